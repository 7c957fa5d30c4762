package api_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// FuzzRequestDecoders sends arbitrary bodies and parameters to every route that
// reads a body or a query, as the admin: whatever the input, the answer is
// never a 5xx, and a 4xx is in Infisical's error shape. It runs on SQLite, or
// on PostgreSQL with LOCKBOX_FUZZ_ENGINE=postgres.
func FuzzRequestDecoders(f *testing.F) {
	engine := store.SQLite
	if os.Getenv("LOCKBOX_FUZZ_ENGINE") == string(store.Postgres) {
		engine = store.Postgres
	}
	e := apptest.Bootstrapped(f, engine)
	p := createProject(f, e, e.Token, map[string]any{"projectName": "fuzz"}).ID
	var routes []string
	for _, pat := range e.App.Patterns() {
		if !strings.HasPrefix(pat, "GET /metrics") && !strings.Contains(pat, "/admin/bootstrap") {
			routes = append(routes, pat)
		}
	}
	seeds := []string{`{}`, `{"projectName":"x"}`, `{"workspaceId":"` + p + `","environment":"dev","secretPath":"/","secretValue":"v"}`,
		`{"secrets":[{"secretKey":"A","secretValue":"1"}],"workspaceId":"` + p + `","environment":"dev"}`,
		`{"name":"n","slug":"s","permissions":[{"subject":"secrets","action":["read"]}]}`, `[`, `{"a":{"b":{"c":[1,2,{"d":null}]}}}`,
		`{"provider":{"type":"totp","inputs":{"configType":"manual","secret":"GEZDGNBV"}},"name":"t","projectSlug":"x","environmentSlug":"dev"}`,
		`{"ttl":"1h","accessTokenTTL":-1,"clientSecretTrustedIps":[{"ipAddress":"::ffff:1.2.3.4/120"}]}`}
	for i := range routes { // every route once, the seed bodies round-robin
		f.Add(uint16(i), "00000000-0000-0000-0000-000000000000", "workspaceId="+p+"&environment=dev", seeds[i%len(seeds)])
	}
	f.Fuzz(func(t *testing.T, route uint16, param, query, body string) {
		pat := routes[int(route)%len(routes)]
		method, path, _ := strings.Cut(pat, " ")
		if strings.ContainsAny(param, "/?#%") || strings.ContainsAny(query, "#") || !validHeaderSafe(param+query) {
			return // not a request a client can send on this route
		}
		target := fill(path, param)
		if query != "" {
			target += "?" + query
		}
		var b any
		if method != "GET" {
			b = body
		}
		r := e.Do(t, method, target, e.Token, b)
		if r.Status >= 500 {
			t.Fatalf("%s %s with %q: %d %s", method, target, body, r.Status, r.Body)
		}
		if r.Status >= 400 && !browserPage(path) { // SSO sign-in answers the browser in HTML
			var m struct {
				StatusCode int    `json:"statusCode"`
				Error      string `json:"error"`
				ReqID      string `json:"reqId"`
			}
			if json.Unmarshal(r.Body, &m) != nil || m.StatusCode != r.Status || m.Error == "" || m.ReqID == "" {
				t.Fatalf("%s %s: %d not in Infisical's error shape: %s", method, target, r.Status, r.Body)
			}
		}
	})
}

// validHeaderSafe rejects what net/http refuses to put on the wire.
func validHeaderSafe(s string) bool {
	for _, c := range s {
		if c < 0x21 || c == 0x7f || c > 0x7e {
			return false
		}
	}
	return true
}
