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

// TestNodeSDK drives the real @infisical/sdk (installed into compat/node by
// scripts/test) through login, create, list, get, update and delete.
func TestNodeSDK(t *testing.T) {
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
