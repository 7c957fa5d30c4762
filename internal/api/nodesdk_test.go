package api_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// nodeSDKDir returns compat/node once the Node SDK is installed there
// (skipping the test locally, failing it under CI, when it is not).
func nodeSDKDir(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../compat/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@infisical", "sdk")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the Node SDK is not installed in %s (scripts/test runs npm ci there): %v", dir, err)
		}
		t.Skip("Node SDK not installed; run ./scripts/test (or npm ci in compat/node)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required: %v", err)
	}
	return dir
}

// runNode runs a script of compat/node against e with a Universal Auth
// identity, decoding the JSON it prints into v.
func runNode(t *testing.T, e *apptest.Env, dir, script, projectID string, v any) {
	t.Helper()
	clientID := uaSetup(t, e, map[string]any{})
	secret, _ := newSecret(t, e, map[string]any{})
	cmd := exec.Command("node", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LOCKBOX_URL="+e.URL, "CLIENT_ID="+clientID, "CLIENT_SECRET="+secret, "PROJECT_ID="+projectID)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
}

// TestNodeSDKKMS drives the real @infisical/sdk 5.0.2's kms().keys(),
// kms().encryption() and kms().signing().
func TestNodeSDKKMS(t *testing.T) {
	dir := nodeSDKDir(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "node-kms"})
		var got struct {
			Key struct {
				SameID                        bool
				Name, Usage, Alg, Description string
				Version                       int
			}
			Decrypted string
			Signing   map[string]struct {
				Listed, SignedBy, Valid, OtherValid bool
				PublicKeyBytes                      int
			}
			Deleted     bool
			AfterDelete string
		}
		runNode(t, e, dir, "kms.mjs", p.ID, &got)
		if !got.Key.SameID || got.Key.Name != "node-enc" || got.Key.Usage != "encrypt-decrypt" || got.Key.Alg != "aes-256-gcm" ||
			got.Key.Version != 1 || got.Key.Description != "from node" {
			t.Fatalf("key %+v", got.Key)
		}
		if got.Decrypted != "hello from node" {
			t.Fatalf("decrypted %q", got.Decrypted)
		}
		for _, alg := range []string{"ECC_NIST_P256", "RSA_4096"} {
			s, ok := got.Signing[alg]
			if !ok || !s.Listed || !s.SignedBy || !s.Valid || s.OtherValid || s.PublicKeyBytes < 64 {
				t.Fatalf("%s signing %+v", alg, s)
			}
		}
		if !got.Deleted || !strings.Contains(got.AfterDelete, "404") {
			t.Fatalf("delete: %v, then %q", got.Deleted, got.AfterDelete)
		}
	})
}

// TestNodeSDK drives the real @infisical/sdk (installed into compat/node by
// scripts/test) through login, create, list, get, update and delete.
func TestNodeSDK(t *testing.T) {
	dir := nodeSDKDir(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "node"})
		clientID := uaSetup(t, e, map[string]any{})
		secret, _ := newSecret(t, e, map[string]any{})
		cmd := exec.Command("node", "smoke.mjs")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LOCKBOX_URL="+e.URL, "CLIENT_ID="+clientID, "CLIENT_SECRET="+secret, "PROJECT_ID="+p.ID)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, stderr.String())
		}
		var got struct {
			Listed []string
			Got    struct {
				Key, Value, Comment string
				Version             int
			}
			Updated, V1, AfterDelete string
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("node output %q: %v", out, err)
		}
		if !slices.Equal(got.Listed, []string{"NODE_KEY=node-v1", "NODE_REF=ref:node-v1"}) {
			t.Fatalf("listed %v", got.Listed)
		}
		if got.Got.Key != "NODE_KEY" || got.Got.Value != "node-v1" || got.Got.Comment != "from node" || got.Got.Version != 1 {
			t.Fatalf("got %+v", got.Got)
		}
		if got.Updated != "node-v2" || got.V1 != "node-v1" || !strings.Contains(got.AfterDelete, "404") {
			t.Fatalf("update/version/delete: %+v", got)
		}
	})
}

// TestNodeSDKInviteMembers drives the real @infisical/sdk 5.0.2's
// projects().inviteMembers: users of the organization become project
// members with the roles asked for (member by default).
func TestNodeSDKInviteMembers(t *testing.T) {
	dir := nodeSDKDir(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "node-invite"})
		invite(t, e, e.Token, "node-a@example.com", "member")
		invite(t, e, e.Token, "node-b@example.com", "member")
		var got struct {
			ByEmail, ByUsername []struct{ ID, UserID, ProjectID string }
			StrangerError       string
		}
		runNode(t, e, dir, "invite.mjs", p.ID, &got)
		if len(got.ByEmail) != 1 || got.ByEmail[0].ProjectID != p.ID || got.ByEmail[0].UserID == "" ||
			len(got.ByUsername) != 1 || got.ByUsername[0].UserID == got.ByEmail[0].UserID {
			t.Fatalf("node saw %+v", got)
		}
		if !strings.Contains(got.StrangerError, "not a member of this organization") {
			t.Fatalf("stranger error %q", got.StrangerError)
		}
		var list struct{ Memberships []projectUserOut }
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/memberships", e.Token, nil).Decode(t, &list)
		roles := map[string]string{}
		for _, m := range list.Memberships {
			roles[m.User.Email] = m.Roles[0].Role
		}
		if len(list.Memberships) != 2 || roles["node-a@example.com"] != "viewer" || roles["node-b@example.com"] != "member" {
			t.Fatalf("memberships %+v", list)
		}
	})
}
