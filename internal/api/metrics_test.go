package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

func getMetrics(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsToken(t *testing.T) {
	e := apptest.Start(t, store.SQLite, apptest.Options{MetricsToken: "metrics-s3cret"})
	for _, auth := range []string{"", "Bearer ", "Bearer wrong", "Bearer metrics-s3cre", "Bearer metrics-s3cret2", "Basic metrics-s3cret", "metrics-s3cret"} {
		if code, body := getMetrics(t, e.URL, auth); code != 401 || strings.Contains(body, "lockbox_http_requests_total") {
			t.Fatalf("Authorization %q: %d %.200s", auth, code, body)
		}
	}
	code, body := getMetrics(t, e.URL, "Bearer metrics-s3cret")
	if code != 200 || !strings.Contains(body, "lockbox_http_requests_total") {
		t.Fatalf("with the token: %d %.200s", code, body)
	}
	// Other routes do not take the metrics token, nor need it.
	e.Must(t, 200, "GET", "/api/status", "", nil)
	if r := e.Do(t, "GET", "/api/v1/organization/audit-logs", "metrics-s3cret", nil); r.Status == 200 {
		t.Fatal("the metrics token opened the API")
	}
}

func TestSeparateMetricsListener(t *testing.T) {
	e := apptest.Start(t, store.SQLite, apptest.Options{SeparateMetrics: true})
	e.Must(t, 200, "GET", "/api/status", "", nil)
	assertError(t, e.Do(t, "GET", "/metrics", "", nil), 404, "NotFound")
	for _, p := range e.App.Patterns() {
		if strings.Contains(p, "/metrics") {
			t.Fatalf("route %q on the API", p)
		}
	}
	ms := httptest.NewServer(e.App.MetricsHandler())
	t.Cleanup(ms.Close)
	code, body := getMetrics(t, ms.URL, "")
	if code != 200 || !strings.Contains(body, `route="GET /api/status"`) {
		t.Fatalf("metrics listener: %d %.300s", code, body)
	}
	if r, err := http.Get(ms.URL + "/api/status"); err != nil || r.StatusCode != 404 {
		t.Fatalf("metrics listener serves the API: %v %v", r, err)
	} else {
		r.Body.Close()
	}

	// With a token, the separate listener checks it too.
	e = apptest.Start(t, store.SQLite, apptest.Options{SeparateMetrics: true, MetricsToken: "tok"})
	ms = httptest.NewServer(e.App.MetricsHandler())
	t.Cleanup(ms.Close)
	if code, _ := getMetrics(t, ms.URL, ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := getMetrics(t, ms.URL, "bearer tok"); code != 200 {
		t.Fatalf("token: %d", code)
	}
}

// TestMetricsMethodLabelIsBounded: a request's method becomes a label only
// if it is one of HTTP's; any other token (Go's server accepts them, up to
// the header limit) is counted as "other", so distinct methods cannot grow
// the server's series without bound. The access log names it the same way.
func TestMetricsMethodLabelIsBounded(t *testing.T) {
	e := apptest.Start(t, store.SQLite, apptest.Options{})
	for i := 0; i < 5; i++ {
		for _, path := range []string{"/api/status", "/no-such-route"} {
			req, err := http.NewRequest(fmt.Sprintf("XMETHOD%dQ", i), e.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	e.Must(t, 200, "GET", "/api/status", "", nil)
	code, body := getMetrics(t, e.URL, "")
	if code != 200 || strings.Contains(body, "XMETHOD") || !strings.Contains(body, `method="other"`) || !strings.Contains(body, `method="GET"`) {
		t.Fatalf("metrics %d: %.2000s", code, body)
	}
}
