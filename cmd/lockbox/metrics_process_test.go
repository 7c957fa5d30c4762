package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMetricsOnSeparateListenerWithToken(t *testing.T) {
	maddr := freeAddr(t)
	addr, cmd, stderr, _ := startServer(t, t.TempDir(), []string{"LOCKBOX_METRICS_LISTEN=" + maddr, "LOCKBOX_METRICS_TOKEN=metrics-hunter3"})
	get := func(url, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("http://"+addr+"/metrics", "metrics-hunter3"); code != 404 {
		t.Fatalf("/metrics on the API listener: %d, want 404", code)
	}
	if code, _ := get("http://"+maddr+"/metrics", ""); code != 401 {
		t.Fatalf("/metrics without the token: %d, want 401", code)
	}
	if code, _ := get("http://"+maddr+"/metrics", "wrong"); code != 401 {
		t.Fatalf("/metrics with a wrong token: %d, want 401", code)
	}
	code, body := get("http://"+maddr+"/metrics", "metrics-hunter3")
	if code != 200 || !strings.Contains(body, `lockbox_http_requests_total{code="200",method="GET",route="GET /api/status"}`) {
		t.Fatalf("/metrics with the token: %d %.300s", code, body)
	}
	if code, _ := get("http://"+maddr+"/api/status", ""); code != 404 {
		t.Fatalf("the metrics listener serves the API: %d", code)
	}

	stopServer(t, cmd, stderr)
	if _, err := http.Get("http://" + maddr + "/metrics"); err == nil {
		t.Fatal("metrics listener still open after shutdown")
	}
	if strings.Contains(stderr.String(), "hunter3") {
		t.Fatal("the metrics token is in the log")
	}
}
