package api_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The tests in this file are the hostile-input suite's attacks by a project
// member: each is named for what it stops and fails without its fix.

// secretQ is the query of a folder's secrets.
func secretQ(projectID, env, path string) string {
	return "workspaceId=" + projectID + "&environment=" + env + "&secretPath=" + path
}

// TestHostileExpansionBombsAreRefused plants both shapes of reference bomb in
// an order that passes the write-time checks (each reference is written before
// what it points to exists) and proves a viewer's expanding read is a 400
// naming the secret, while other clients are served meanwhile.
const maxRefs = 500 // secret.MaxRefsPerValue

func TestHostileExpansionBombsAreRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "bombs"})
		viewerID, viewer := e.NewIdentity(t, "viewer", "member")
		addMember(t, e, p.ID, viewerID, map[string]any{"role": "viewer"})

		// Shape 1: a 400 kB value referenced 500 times by one secret (200 MB).
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "wide"))
		putSecret(t, e, e.Token, p.ID, "dev", "/wide", "WIDE", strings.Repeat("${BIG}", maxRefs))
		putSecret(t, e, e.Token, p.ID, "dev", "/wide", "BIG", strings.Repeat("x", 400<<10))

		// Shape 2: five levels, each value referencing the next 500 times.
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "deep"))
		for i := 1; i <= 4; i++ {
			putSecret(t, e, e.Token, p.ID, "dev", "/deep", "L"+string(rune('0'+i)), strings.Repeat("${L"+string(rune('1'+i))+"}", maxRefs))
		}
		putSecret(t, e, e.Token, p.ID, "dev", "/deep", "L5", strings.Repeat("y", 100))
		putSecret(t, e, e.Token, p.ID, "dev", "/", "FINE", "ok")

		var wg sync.WaitGroup
		for _, c := range []struct{ path, key string }{{"/wide", "WIDE"}, {"/deep", "L1"}} {
			q := secretQ(p.ID, "dev", c.path) + "&expandSecretReferences=true"
			wg.Go(func() {
				for _, u := range []string{"/api/v3/secrets/raw?" + q, "/api/v4/secrets?" + q + "&recursive=true&includeImports=true",
					"/api/v3/secrets/raw/" + c.key + "?" + q} {
					r := e.Do(t, "GET", u, viewer, nil)
					if r.Status != 400 || !strings.Contains(string(r.Body), "'"+c.key+"'") || !strings.Contains(string(r.Body), "limit") {
						t.Errorf("GET %s: %d %.300s; want a 400 naming %s", u, r.Status, r.Body, c.key)
					}
				}
			})
		}
		for range 3 { // others are served while the bombs are refused
			wg.Go(func() {
				for range 5 {
					if r := e.Do(t, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/")+"&expandSecretReferences=true", viewer, nil); r.Status != 200 {
						t.Errorf("plain list: %d %.200s", r.Status, r.Body)
					}
				}
			})
		}
		wg.Wait()
		// Without expansion the bomb is just text.
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/wide"), viewer, nil)

		// Writes that can be known to explode are refused up front.
		r := e.Do(t, "POST", "/api/v3/secrets/raw/MORE", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/wide",
			"secretValue": strings.Repeat("${BIG}", 100)})
		if r.Status != 422 || !strings.Contains(string(r.Body), "MORE") {
			t.Fatalf("write of an exploding value: %d %.300s", r.Status, r.Body)
		}
		r = e.Do(t, "PATCH", "/api/v3/secrets/raw/FINE", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": strings.Repeat("${A}", maxRefs+1)})
		if r.Status != 422 {
			t.Fatalf("write of %d references: %d %.300s", maxRefs+1, r.Status, r.Body)
		}
	})
}
