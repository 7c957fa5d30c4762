package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

var csrfFieldRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// dashboardForm GETs page with the browser c and POSTs form to action with
// the page's CSRF token, returning the answer's status and body.
func dashboardForm(t *testing.T, c *http.Client, base, page, action string, form url.Values) (int, string) {
	t.Helper()
	res, err := c.Get(base + page)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfFieldRE.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("no CSRF token on %s (%d): %s", page, res.StatusCode, b)
	}
	form.Set("csrf_token", m[1])
	req, _ := http.NewRequest("POST", base+action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(b)
}

// TestCLIDeviceLogin: `lockbox login --method device` prints a code and a
// dashboard URL, waits while the user approves it in the dashboard, and
// saves a session of that user that later commands use.
func TestCLIDeviceLogin(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	_, project := adminSetup(t, c)
	base := "http://" + addr

	cmd := exec.Command(binary, "login", "--method", "device")
	cmd.Env = c.env()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	var link string
	for link == "" && sc.Scan() {
		if m := regexp.MustCompile(`open (http://\S+/device\?code=[A-Z-]+)`).FindStringSubmatch(sc.Text()); m != nil {
			link = m[1]
		}
	}
	if link == "" {
		t.Fatal("the CLI printed no device URL")
	}
	go io.Copy(io.Discard, stderr)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if code, body := dashboardForm(t, browser, base, "/login", "/login", url.Values{"email": {"a@b.co"}, "password": {"pw"}}); code != http.StatusSeeOther {
		t.Fatalf("dashboard login: %d %s", code, body)
	}
	page := strings.TrimPrefix(link, base)
	code := strings.TrimPrefix(page, "/device?code=")
	if st, body := dashboardForm(t, browser, base, page, "/device", url.Values{"code": {code}, "decision": {"approve"}}); st != 200 ||
		!strings.Contains(body, "Approved") {
		t.Fatalf("approve: %d %s", st, body)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("lockbox login --method device: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the CLI did not finish after the approval")
	}
	// The saved session is the user's: it lists the admin user's project.
	var projects []struct{ ID string }
	if err := json.Unmarshal([]byte(c.must(nil, "projects", "list", "-o", "json")), &projects); err != nil || len(projects) != 1 || projects[0].ID != project {
		t.Fatalf("projects with the device session: %v %+v", err, projects)
	}
}

// TestCLIDeviceLoginEscapesTheServersText: what a server sends during a
// device login (its URLs, the code, the user's email and organization) is
// written escaped: a server could otherwise set the terminal's clipboard
// (OSC 52) or clear its screen through it.
func TestCLIDeviceLoginEscapesTheServersText(t *testing.T) {
	const osc52, clear = "\x1b]52;c;ZWNobyBwd25lZA==\x07", "\x1b[2J"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/auth/device":
			json.NewEncoder(w).Encode(map[string]any{"deviceCode": "d", "userCode": "AB-CD" + osc52,
				"verificationUri": "http://127.0.0.1/device" + clear, "verificationUriComplete": "http://127.0.0.1/device?code=AB" + osc52,
				"expiresIn": 60, "interval": 1})
		case "/api/v1/auth/device/token":
			json.NewEncoder(w).Encode(map[string]any{"accessToken": "t", "expiresIn": 3600, "accessTokenMaxTTL": 3600, "tokenType": "Bearer",
				"user": map[string]any{"email": "a@b" + clear}, "organization": map[string]any{"id": "o", "name": "org" + osc52}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c := newCLI(t, strings.TrimPrefix(srv.URL, "http://"))
	r := c.run(nil, "login", "--method", "device")
	if strings.ContainsRune(r.stderr, 0x1b) || strings.ContainsRune(r.stderr, 0x07) || !strings.Contains(r.stderr, `\x1b]52`) {
		t.Fatalf("exit %d, the server's text reached the terminal raw: %q", r.code, r.stderr)
	}
}
