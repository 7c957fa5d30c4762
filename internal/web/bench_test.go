package web_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// BenchmarkSecretsOverview renders the secrets grid of a project holding
// 1,000 secrets in each of its 3 environments, over HTTP with a session
// (session check, permission resolution, three listings, template), and
// reports the p99 of one page.
//
//	go test -run '^$' -bench SecretsOverview -benchtime 200x ./internal/web/
func BenchmarkSecretsOverview(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) { benchOverview(b, d) })
	}
}

func benchOverview(b *testing.B, d store.Dialect) {
	e := apptest.Bootstrapped(b, d)
	br := newBrowser(b, e.URL)
	br.mustLogin(e.UserEmail, e.Password)
	pid := createProject(b, br, "bench")
	for _, env := range []string{"dev", "staging", "prod"} {
		var sb strings.Builder
		for i := range 1000 {
			fmt.Fprintf(&sb, "KEY_%04d=%s-value-%d\n", i, env, i)
		}
		p := br.post("/projects/"+pid+"/secrets/import", url.Values{"env": {env}, "path": {"/"}, "dotenv": {sb.String()}}, nil)
		mustStatus(b, p, 303, "seed "+env)
	}
	p := br.get("/projects/" + pid + "/secrets")
	mustStatus(b, p, 200, "overview")
	if n := strings.Count(p.body, `class="present"`); n != 3000 {
		b.Fatalf("grid has %d cells, want 3000", n)
	}
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		p := br.get("/projects/" + pid + "/secrets")
		times = append(times, time.Since(start))
		if p.status != 200 {
			b.Fatalf("status %d", p.status)
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
}
