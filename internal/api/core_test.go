package api_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// forEachEngine runs fn once per database engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, d store.Dialect)) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) { fn(t, d) })
	}
}

// assertError checks Infisical's error shape.
func assertError(t *testing.T, r apptest.Response, status int, name string) map[string]any {
	t.Helper()
	if r.Status != status {
		if r.Status < 400 {
			// An answer that should have been a refusal may hold what it
			// guards (a token, a private key, a one-time link).
			t.Fatalf("status %d, want %d (the body of a success is not shown)", r.Status, status)
		}
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	m := r.JSON(t)
	if m["statusCode"] != float64(status) || m["error"] != name {
		t.Fatalf("error body %v, want statusCode %d error %q", m, status, name)
	}
	reqID, _ := m["reqId"].(string)
	if reqID == "" || r.Header.Get("X-Request-Id") != reqID {
		t.Fatalf("reqId %q vs header %q", reqID, r.Header.Get("X-Request-Id"))
	}
	if m["message"] == nil {
		t.Fatal("no message")
	}
	return m
}

func TestBootstrapExactlyOnceUnderRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Start(t, d)
		const n = 8
		var wg sync.WaitGroup
		results := make([]apptest.Response, n)
		for i := range n {
			wg.Go(func() {
				results[i] = e.Do(t, "POST", "/api/v1/admin/bootstrap", "", map[string]string{
					"email": "a@b.co", "password": "pw", "organization": "Org"})
			})
		}
		wg.Wait()
		ok := 0
		for _, r := range results {
			switch r.Status {
			case 200:
				ok++
				m := r.JSON(t)
				ident := m["identity"].(map[string]any)
				tok := ident["credentials"].(map[string]any)["token"].(string)
				if m["message"] != "Successfully bootstrapped instance" || tok == "" {
					t.Fatalf("bootstrap body %s", r.Body)
				}
				// The token works.
				e.Must(t, 200, "GET", "/api/v1/organization/audit-logs", tok, nil)
			default:
				m := assertError(t, r, 400, "BadRequest")
				if m["message"] != "Instance has already been set up" {
					t.Fatalf("message %v", m["message"])
				}
			}
		}
		if ok != 1 {
			t.Fatalf("%d bootstraps succeeded, want exactly 1", ok)
		}
	})
}

func TestBootstrapValidation(t *testing.T) {
	e := apptest.Start(t, store.SQLite)
	cases := []struct {
		name string
		body any
	}{
		{"empty body", nil},
		{"missing email", map[string]string{"password": "x", "organization": "o"}},
		{"bad email", map[string]string{"email": "nope", "password": "x", "organization": "o"}},
		{"blank password", map[string]string{"email": "a@b.co", "password": "  ", "organization": "o"}},
		{"missing organization", map[string]string{"email": "a@b.co", "password": "x"}},
		{"wrong type", `{"email": 5, "password": "x", "organization": "o"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertError(t, e.Do(t, "POST", "/api/v1/admin/bootstrap", "", c.body), 422, "ValidationFailure")
		})
	}
	// Still not set up: a valid call succeeds afterwards.
	e.Must(t, 200, "POST", "/api/v1/admin/bootstrap", "", map[string]string{"email": "a@b.co", "password": "x", "organization": "o"})
}

func TestErrorShapes(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{MaxBodyBytes: 4096})
	t.Run("malformed JSON", func(t *testing.T) {
		assertError(t, e.Do(t, "POST", "/api/v1/admin/bootstrap", "", `{"email": `), 400, "BadRequest")
	})
	t.Run("invalid UTF-8", func(t *testing.T) {
		assertError(t, e.Do(t, "POST", "/api/v3/auth/login", "", []byte("{\"email\":\"\xff\xfe\"}")), 400, "BadRequest")
	})
	t.Run("body too large", func(t *testing.T) {
		big := `{"email":"` + strings.Repeat("a", 8000) + `"}`
		assertError(t, e.Do(t, "POST", "/api/v3/auth/login", "", big), 413, "PayloadTooLarge")
	})
	t.Run("unknown route", func(t *testing.T) {
		assertError(t, e.Do(t, "GET", "/api/v1/nope", "", nil), 404, "NotFound")
	})
	t.Run("wrong method keeps Allow", func(t *testing.T) {
		r := e.Do(t, "DELETE", "/api/status", "", nil)
		assertError(t, r, 405, "MethodNotAllowed")
		if !strings.Contains(r.Header.Get("Allow"), "GET") {
			t.Fatalf("Allow %q", r.Header.Get("Allow"))
		}
	})
	t.Run("missing token", func(t *testing.T) {
		m := assertError(t, e.Do(t, "GET", "/api/v1/organization/audit-logs", "", nil), 401, "UnauthorizedError")
		if m["message"] != "Token missing" {
			t.Fatalf("message %v", m["message"])
		}
	})
	t.Run("malformed token", func(t *testing.T) {
		assertError(t, e.Do(t, "GET", "/api/v1/organization/audit-logs", "not.a.jwt", nil), 403, "TokenError")
	})
	t.Run("tampered token", func(t *testing.T) {
		// A signature character whose six bits all count (the last one
		// carries padding bits a decoder may ignore), changed for certain.
		i := len(e.Token) - 10
		c := byte('A')
		if e.Token[i] == 'A' {
			c = 'B'
		}
		tok := e.Token[:i] + string(c) + e.Token[i+1:]
		assertError(t, e.Do(t, "GET", "/api/v1/organization/audit-logs", tok, nil), 403, "TokenError")
	})
	t.Run("wrong scheme", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.URL+"/api/v1/organization/audit-logs", nil)
		req.Header.Set("Authorization", "Basic "+e.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.URL+"/api/v1/organization/audit-logs", nil)
		req.Header.Set("Authorization", "bearer "+e.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("trailing slash", func(t *testing.T) {
		e.Must(t, 200, "GET", "/api/status/", "", nil)
	})
}

func TestStatusAndMetrics(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Start(t, d)
		m := e.Must(t, 200, "GET", "/api/status", "", nil).JSON(t)
		if m["message"] != "Ok" || m["version"] != "test" || m["schemaVersion"].(float64) < 1 || m["database"] != string(d) {
			t.Fatalf("status %v", m)
		}
		r := e.Must(t, 200, "GET", "/metrics", "", nil)
		if !bytes.Contains(r.Body, []byte(`lockbox_http_requests_total{code="200",method="GET",route="GET /api/status"}`)) {
			t.Fatalf("metrics lack the status request:\n%.2000s", r.Body)
		}
	})
}

func TestAuthRateLimit(t *testing.T) {
	e := apptest.Start(t, store.SQLite, apptest.Options{AuthRateLimit: 3})
	statuses := []int{}
	for range 5 {
		statuses = append(statuses, e.Do(t, "POST", "/api/v3/auth/login", "", map[string]string{"email": "x@y.z", "password": "p"}).Status)
	}
	if statuses[3] != 429 || statuses[4] != 429 || statuses[0] == 429 {
		t.Fatalf("statuses %v, want the 4th and 5th to be 429", statuses)
	}
	assertError(t, e.Do(t, "POST", "/api/v1/admin/bootstrap", "", map[string]string{}), 429, "RateLimitExceeded")
	// The dashboard's sign-in forms share the limit: a client cannot try
	// passwords there that the API would refuse it.
	for _, r := range []struct{ method, path string }{{"POST", "/login"}, {"POST", "/mfa"}, {"GET", "/signupinvite?token=x"}, {"POST", "/signupinvite"}} {
		if got := e.Do(t, r.method, r.path, "", "email=x%40y.z&password=p").Status; got != 429 {
			t.Errorf("%s %s after the limit: %d, want 429", r.method, r.path, got)
		}
	}
	// Other routes are not limited.
	e.Must(t, 200, "GET", "/api/status", "", nil)
	e.Must(t, 200, "GET", "/login", "", nil)
}

func TestHumanLoginAndSelectOrganization(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		assertError(t, e.Do(t, "POST", "/api/v3/auth/login", "", map[string]string{"email": e.UserEmail, "password": "wrong"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v3/auth/login", "", map[string]string{"email": "nobody@x.y", "password": "wrong"}), 400, "BadRequest")
		var login struct{ AccessToken string }
		e.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": strings.ToUpper(e.UserEmail), "password": e.Password}).Decode(t, &login)
		// Without an organization the session can list orgs but not act in one.
		var orgs struct{ Organizations []struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v1/organization", login.AccessToken, nil).Decode(t, &orgs)
		if len(orgs.Organizations) != 1 || orgs.Organizations[0].ID != e.OrgID {
			t.Fatalf("orgs %+v", orgs)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/organization/audit-logs", login.AccessToken, nil), 401, "UnauthorizedError")
		assertError(t, e.Do(t, "POST", "/api/v3/auth/select-organization", login.AccessToken, map[string]string{"organizationId": "other"}), 403, "ForbiddenError")
		var sel struct{ Token string }
		e.Must(t, 200, "POST", "/api/v3/auth/select-organization", login.AccessToken, map[string]string{"organizationId": e.OrgID}).Decode(t, &sel)
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs", sel.Token, nil)
	})
}

func TestAuditLogRecordsBootstrapAndFilters(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		var out struct {
			AuditLogs []struct {
				Event struct {
					Type     string
					Metadata map[string]any
				}
				Actor struct{ Type string }
				OrgID string
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=bootstrap-instance", e.Token, nil).Decode(t, &out)
		if len(out.AuditLogs) != 1 || out.AuditLogs[0].OrgID != e.OrgID || out.AuditLogs[0].Actor.Type != "user" {
			t.Fatalf("audit logs %+v", out)
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=create-project", e.Token, nil).Decode(t, &out)
		if len(out.AuditLogs) != 0 {
			t.Fatalf("filter by event type returned %+v", out)
		}
		// A page starts at most 100,000 rows in (the database walks every row before it).
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?offset=100000", e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/organization/audit-logs?offset=100001", e.Token, nil), 422, "ValidationFailure")
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?startDate=2000-01-01T00:00:00Z&endDate=2000-01-02T00:00:00Z", e.Token, nil).Decode(t, &out)
		if len(out.AuditLogs) != 0 {
			t.Fatalf("date filter returned %+v", out)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/organization/audit-logs?limit=5000", e.Token, nil), 422, "ValidationFailure")
		assertError(t, e.Do(t, "GET", "/api/v1/organization/audit-logs?startDate=yesterday", e.Token, nil), 422, "ValidationFailure")
		// Event types are parameters of the query: at most audit.MaxEventTypes
		// distinct ones (40,000 were a 500 on SQLite), repeats counted once.
		types := func(n, distinct int) string {
			ts := make([]string, n)
			for i := range ts {
				ts[i] = fmt.Sprintf("e%d", i%distinct)
			}
			ts[0] = "bootstrap-instance"
			return "/api/v1/organization/audit-logs?eventType=" + strings.Join(ts, ",")
		}
		e.Must(t, 200, "GET", types(audit.MaxEventTypes, audit.MaxEventTypes), e.Token, nil).Decode(t, &out)
		if len(out.AuditLogs) != 1 || out.AuditLogs[0].Event.Type != "bootstrap-instance" {
			t.Fatalf("%d event types: %+v", audit.MaxEventTypes, out)
		}
		e.Must(t, 200, "GET", types(40000, 10), e.Token, nil)
		m := assertError(t, e.Do(t, "GET", types(40000, 40000), e.Token, nil), 422, "ValidationFailure")
		if !strings.Contains(fmt.Sprint(m["message"]), "at most 100 event types") {
			t.Fatalf("too many event types: %v", m)
		}
	})
}

func TestAccessLogNeverContainsTokenOrBody(t *testing.T) {
	var buf syncBuffer
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{Log: &buf})
	e.Do(t, "POST", "/api/v3/auth/login", "", map[string]string{"email": e.UserEmail, "password": e.Password})
	e.Do(t, "GET", "/api/v1/organization/audit-logs", e.Token, nil)
	logs := buf.String()
	if !strings.Contains(logs, `"route":"GET /api/v1/organization/audit-logs"`) {
		t.Fatalf("no access log line for the request:\n%s", logs)
	}
	for _, secret := range []string{e.Token, e.Password, "Bearer"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log contains %q", secret)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestLogsExplainRefusalsAndDebugQueries: every 4xx is logged with its
// message and request id; at debug the query is logged, tokens masked.
func TestLogsExplainRefusalsAndDebugQueries(t *testing.T) {
	var buf syncBuffer
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{Log: &buf, LogLevel: slog.LevelDebug})
	r := e.Do(t, "GET", "/api/v3/secrets/raw?workspaceId=00000000-0000-0000-0000-000000000000&environment=dev&accessToken=planted-tok&client_secret=planted-cs&secret=planted-s&code=planted-code&State=planted-state", e.Token, nil)
	m := assertError(t, r, 404, "NotFound")
	logs := buf.String()
	if !strings.Contains(logs, `"msg":"request refused"`) || !strings.Contains(logs, m["reqId"].(string)) ||
		!strings.Contains(logs, "not found") {
		t.Fatalf("no refusal line with the request id and message:\n%s", logs)
	}
	if !strings.Contains(logs, "environment=dev") || strings.Contains(logs, "planted-") {
		t.Fatalf("debug query line missing, or it shows the token:\n%s", logs)
	}
}
