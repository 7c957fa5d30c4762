package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// testServer starts lockbox on SQLite for a test (stopped at its end) and
// bootstraps it; the client holds the admin identity's token.
func testServer(t *testing.T) (string, *client.Client) {
	t.Helper()
	_, url, stop, err := start(store.SQLite, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	c := client.New(url, "")
	boot, err := c.Bootstrap(t.Context(), benchEmail, benchPassword, "Bench")
	if err != nil {
		t.Fatal(err)
	}
	c.Token = boot.Identity.Credentials.Token
	return url, c
}

// The ceiling scenario serves, byte for byte and with the same content
// type, what lockbox answers to the secrets-list request it stands in for,
// with and without expansion and imports.
func TestCeilingServesLockboxsAnswer(t *testing.T) {
	url, c := testServer(t)
	get := func(u, token string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v %s", u, resp.StatusCode, err, b)
		}
		return resp, b
	}
	for _, q := range []listQuery{{expand: true, imports: true}, {expand: false, imports: false}} {
		t.Run(fmt.Sprintf("expand=%t,imports=%t", q.expand, q.imports), func(t *testing.T) {
			rq, err := prepareSecretsList(t.Context(), c, url, 20, q)
			if err != nil {
				t.Fatal(err)
			}
			op, stopCeiling, err := prepareCeiling(rq)
			if err != nil {
				t.Fatal(err)
			}
			defer stopCeiling()
			var seen *http.Request
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				seen = r
				return http.DefaultTransport.RoundTrip(r)
			})}
			if err := op(hc); err != nil {
				t.Fatalf("ceiling operation: %v", err)
			}
			if seen == nil || seen.URL.Host == "" || "http://"+seen.URL.Host == url || seen.URL.RawQuery != mustQuery(t, rq.url) {
				t.Fatalf("the ceiling operation asked %v, want lockbox's query on another port", seen.URL)
			}
			lbResp, lockbox := get(rq.url, rq.token)
			ceResp, ceiling := get(seen.URL.String(), rq.token)
			if !bytes.Equal(ceiling, lockbox) {
				t.Fatalf("ceiling body (%d bytes) differs from lockbox's (%d bytes)", len(ceiling), len(lockbox))
			}
			if ct := ceResp.Header.Get("Content-Type"); ct != lbResp.Header.Get("Content-Type") {
				t.Errorf("ceiling Content-Type %q, lockbox %q", ct, lbResp.Header.Get("Content-Type"))
			}
			// The flags reach lockbox: references expanded or left, imports in or out.
			if expanded := !bytes.Contains(lockbox, []byte("${KEY_3}")); expanded != q.expand {
				t.Errorf("asked expand=%t, answer expanded: %t", q.expand, expanded)
			}
			if imported := bytes.Contains(lockbox, []byte(`"secretKey":"IMPORTED_0"`)); imported != q.imports {
				t.Errorf("asked imports=%t, answer has the imported secrets: %t", q.imports, imported)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func mustQuery(t *testing.T, u string) string {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req.URL.RawQuery
}
