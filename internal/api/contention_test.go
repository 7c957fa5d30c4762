package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// doIfMatch sends a JSON request with an If-Match header as the bootstrap admin.
func doIfMatch(t *testing.T, e *apptest.Env, method, path, ifMatch string, body any) apptest.Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, e.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.Token)
	req.Header.Set("If-Match", ifMatch)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: rb}
}

// Blind writes (no If-Match, no version) are applied in turn: none fails
// because another landed first, and each is a version of its own.
func TestConcurrentBlindUpdates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "contention"})
		s := putSecret(t, e, e.Token, p.ID, "dev", "/", "HOT", "v0")
		// Keep every version, not the default 10, to see each write.
		e.Must(t, 200, "PUT", "/api/v1/workspace/"+p.Slug+"/version-limit", e.Token, map[string]any{"pitVersionLimit": 100})

		const n = 16
		values := make([]string, n)
		statuses := make([]int, n)
		bodies := make([][]byte, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			values[i] = fmt.Sprintf("value-%02d", i)
			wg.Go(func() {
				<-start
				var r apptest.Response
				if i%4 == 3 { // batch items are blind writes too
					r = e.Do(t, "PATCH", "/api/v3/secrets/batch/raw", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
						"secretPath": "/", "secrets": []map[string]any{{"secretKey": "HOT", "secretValue": values[i], "secretComment": "writer " + values[i]}}})
				} else {
					r = e.Do(t, "PATCH", "/api/v3/secrets/raw/HOT", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
						"secretPath": "/", "secretValue": values[i], "secretComment": "writer " + values[i]})
				}
				statuses[i], bodies[i] = r.Status, r.Body
			})
		}
		close(start)
		wg.Wait()
		failed := 0
		for i, st := range statuses {
			if st != 200 {
				failed++
				t.Errorf("writer %d: status %d: %s", i, st, bodies[i])
			}
		}
		if failed > 0 {
			t.Fatalf("%d of %d blind updates failed", failed, n)
		}

		var hist struct{ SecretVersions []secretOut }
		e.Must(t, 200, "GET", "/api/v1/secret/"+s.ID+"/secret-versions?limit=100", e.Token, nil).Decode(t, &hist)
		if len(hist.SecretVersions) != n+1 {
			t.Fatalf("history holds %d versions, want %d", len(hist.SecretVersions), n+1)
		}
		seen := map[string]bool{}
		for i, h := range hist.SecretVersions {
			if want := n + 1 - i; h.Version != want {
				t.Fatalf("history[%d] is version %d, want %d", i, h.Version, want)
			}
			if h.Version > 1 {
				if !slices.Contains(values, h.SecretValue) || seen[h.SecretValue] {
					t.Fatalf("version %d holds %q: not one of the writes, or written twice", h.Version, h.SecretValue)
				}
				if h.SecretComment != "writer "+h.SecretValue {
					t.Fatalf("version %d mixes writes: value %q, comment %q", h.Version, h.SecretValue, h.SecretComment)
				}
				seen[h.SecretValue] = true
			}
		}
		var cur struct{ Secret secretOut }
		r := e.Must(t, 200, "GET", "/api/v3/secrets/raw/HOT?workspaceId="+p.ID+"&environment=dev", e.Token, nil)
		r.Decode(t, &cur)
		if cur.Secret.Version != n+1 || cur.Secret.SecretValue != hist.SecretVersions[0].SecretValue {
			t.Fatalf("current %+v, want version %d with the newest value %q", cur.Secret, n+1, hist.SecretVersions[0].SecretValue)
		}
		if got, want := r.Header.Get("ETag"), fmt.Sprintf(`"%d"`, n+1); got != want {
			t.Fatalf("ETag %q, want %q", got, want)
		}
	})
}

// Compare-and-set: If-Match with the secret's ETag, or lockbox's version field.
func TestConditionalUpdate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "cas"})
		s := putSecret(t, e, e.Token, p.ID, "dev", "/", "CAS", "v1")
		get := e.Must(t, 200, "GET", "/api/v3/secrets/raw/CAS?workspaceId="+p.ID+"&environment=dev", e.Token, nil)
		etag1 := get.Header.Get("ETag")
		if etag1 != `"1"` {
			t.Fatalf("GET ETag %q", etag1)
		}
		body := func(v string) map[string]any {
			return map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": v}
		}
		// A current If-Match writes and answers the new ETag.
		r := doIfMatch(t, e, "PATCH", "/api/v3/secrets/raw/CAS", etag1, body("v2"))
		if r.Status != 200 {
			t.Fatalf("current If-Match: %d %s", r.Status, r.Body)
		}
		if got := r.Header.Get("ETag"); got != `"2"` {
			t.Fatalf("PATCH ETag %q", got)
		}
		// Stale If-Match: 412 in Infisical's error shape, nothing written.
		assertError(t, doIfMatch(t, e, "PATCH", "/api/v3/secrets/raw/CAS", etag1, body("lost")), 412, "PreconditionFailed")
		// A weak tag (as a compressing proxy makes it) and a list compare by value.
		assertError(t, doIfMatch(t, e, "PATCH", "/api/v3/secrets/raw/CAS", `W/"1", "7"`, body("lost")), 412, "PreconditionFailed")
		assertError(t, doIfMatch(t, e, "PATCH", "/api/v3/secrets/raw/CAS", `garbage`, body("lost")), 412, "PreconditionFailed")
		// Stale version field: 409.
		v1 := body("lost")
		v1["version"] = 1
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/CAS", e.Token, v1), 409, "Conflict")
		var hist struct{ SecretVersions []secretOut }
		e.Must(t, 200, "GET", "/api/v1/secret/"+s.ID+"/secret-versions?limit=100", e.Token, nil).Decode(t, &hist)
		if len(hist.SecretVersions) != 2 || hist.SecretVersions[0].SecretValue != "v2" {
			t.Fatalf("a failed precondition wrote: %+v", hist.SecretVersions)
		}
		// Current version field, and If-Match lists and "*".
		v2 := body("v3")
		v2["version"] = 2
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/CAS", e.Token, v2)
		if r := doIfMatch(t, e, "PATCH", "/api/v4/secrets/CAS", `"1", W/"3"`, body("v4")); r.Status != 200 {
			t.Fatalf("If-Match list naming the current tag: %d %s", r.Status, r.Body)
		}
		if r := doIfMatch(t, e, "PATCH", "/api/v3/secrets/raw/CAS", `*`, body("v5")); r.Status != 200 {
			t.Fatalf("If-Match *: %d %s", r.Status, r.Body)
		}
		assertError(t, doIfMatch(t, e, "PATCH", "/api/v3/secrets/raw/NONE", `*`, body("x")), 404, "NotFound")
		var cur struct{ Secret secretOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/CAS?workspaceId="+p.ID+"&environment=dev", e.Token, nil).Decode(t, &cur)
		if cur.Secret.Version != 5 || cur.Secret.SecretValue != "v5" {
			t.Fatalf("current %+v", cur.Secret)
		}
		// Batch items are blind: a precondition there is refused, not ignored.
		assertError(t, doIfMatch(t, e, "PATCH", "/api/v3/secrets/batch/raw", `"5"`, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secrets": []map[string]any{{"secretKey": "CAS", "secretValue": "x"}}}), 400, "BadRequest")
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/CAS", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "x", "version": -1}), 422, "ValidationFailure")
	})
}

// Two secrets renamed to one free name at once: one rename wins, the other is
// refused as a rename onto an existing name, never a 409 or a 500.
func TestConcurrentRenamesToOneName(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "renames"})
		for round := range 4 {
			target := fmt.Sprintf("TARGET_%d", round)
			keys := []string{fmt.Sprintf("A_%d", round), fmt.Sprintf("B_%d", round)}
			for _, k := range keys {
				putSecret(t, e, e.Token, p.ID, "dev", "/", k, k)
			}
			statuses := make([]int, len(keys))
			var wg sync.WaitGroup
			for i, k := range keys {
				wg.Go(func() {
					statuses[i] = e.Do(t, "PATCH", "/api/v3/secrets/raw/"+k, e.Token, map[string]any{"workspaceId": p.ID,
						"environment": "dev", "newSecretName": target}).Status
				})
			}
			wg.Wait()
			slices.Sort(statuses)
			if !slices.Equal(statuses, []int{200, 400}) {
				t.Fatalf("round %d: statuses %v, want one 200 and one 400", round, statuses)
			}
		}
	})
}
