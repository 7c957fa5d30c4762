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
		b.Run(string(d), func(b *testing.B) {
			br, pid := benchProject(b, d)
			benchPage(b, br, "/projects/"+pid+"/secrets", `class="present"`, 3000)
		})
	}
}

// BenchmarkPages renders the other main pages on the same project (3×1,000
// secrets), one sub-benchmark each: a secret's history (20 versions), the
// audit log (first page of thousands of events), machine identities (50),
// organization members (50, half invited), a group (the 50 identities),
// the dynamic secrets of a folder (20), one of them with 10 leases, a
// secret, the projects, environments, project roles and members, KMS keys
// (10), an identity (Universal Auth, 5 client secrets), organization roles
// and groups, reporting each page's p50 and p99.
//
//	go test -run '^$' -bench Pages -benchtime 200x ./internal/web/
func BenchmarkPages(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			br, pid := benchProject(b, d)
			for i := 2; i <= 20; i++ {
				p := br.post("/projects/"+pid+"/secrets/update", url.Values{"env": {"dev"}, "path": {"/"}, "key": {"KEY_0001"},
					"value": {fmt.Sprintf("line one\nversion %d\n", i)}}, nil)
				mustStatus(b, p, 303, "new version")
			}
			for i := range 10 {
				mustStatus(b, br.post("/projects/"+pid+"/kms", url.Values{"name": {fmt.Sprintf("key-%02d", i)}, "usage": {"encrypt-decrypt"},
					"algorithm": {"aes-256-gcm"}}, nil), 303, "kms key")
			}
			g := br.post("/org/groups", url.Values{"name": {"machines"}, "role": {"no-access"}}, nil)
			mustStatus(b, g, 303, "group")
			group := g.header.Get("Location")
			machine := "" // the first identity's page
			for i := range 50 {
				iid := createIdentity(b, br, fmt.Sprintf("machine-%02d", i), "member")
				if machine == "" {
					machine = "/identities/" + iid
				}
				mustStatus(b, br.post(group+"/identities", url.Values{"identity": {iid}}, nil), 303, "group member")
			}
			mustStatus(b, br.post(machine+"/universal-auth", nil, nil), 303, "universal auth")
			for range 5 {
				mustStatus(b, br.post(machine+"/client-secrets", url.Values{"description": {"ci"}}, nil), 200, "client secret")
			}
			var emails []string
			for i := range 25 {
				emails = append(emails, fmt.Sprintf("person-%02d@example.com", i))
			}
			mustStatus(b, br.post("/org/members/invite", url.Values{"emails": {strings.Join(emails, "\n")}, "role": {"member"}}, nil), 200, "invite")
			for i := range 20 {
				p := br.post("/projects/"+pid+"/dynamic", url.Values{"env": {"dev"}, "path": {"/"}, "type": {"totp"},
					"name": {fmt.Sprintf("otp-%02d", i)}, "defaultTTL": {"1h"}, "in.configType": {"manual"},
					"in.secret": {"JBSWY3DPEHPK3PXP"}}, nil)
				mustStatus(b, p, 303, "dynamic secret")
			}
			for range 10 {
				mustStatus(b, br.post("/projects/"+pid+"/dynamic/otp-00/leases?env=dev&path=/", url.Values{"ttl": {"1h"}}, nil), 200, "lease")
			}
			for _, pg := range []struct{ name, path, marker string }{
				{"history", "/projects/" + pid + "/secret/history?env=dev&path=/&key=KEY_0001", `class="version"`},
				{"audit", "/audit", `class="event"`},
				{"identities", "/identities", `href="/identities/`},
				{"members", "/org/members", `<tr data-`},
				{"group", group, `<tr data-identity=`},
				{"dynamic", "/projects/" + pid + "/dynamic?env=dev&path=/", `/dynamic/otp-`},
				{"leases", "/projects/" + pid + "/dynamic/otp-00?env=dev&path=/", `<tr data-lease=`},
				{"secret", "/projects/" + pid + "/secret?env=dev&path=/&key=KEY_0001", `id="secret-version"`},
				{"projects", "/projects", `/secrets"`},
				{"environments", "/projects/" + pid + "/environments", `<tr data-env=`},
				{"roles", "/projects/" + pid + "/roles", `<tr data-role=`},
				{"project-members", "/projects/" + pid + "/members", `<tr data-user=`},
				{"kms", "/projects/" + pid + "/kms", `<tr data-key=`},
				{"identity", machine, `id="client-secrets"`},
				{"org-roles", "/org/roles", `<tr data-role=`},
				{"groups", "/org/groups", `<tr data-group=`},
			} {
				b.Run(pg.name, func(b *testing.B) { benchPage(b, br, pg.path, pg.marker, 0) })
			}
		})
	}
}

// benchProject logs in and seeds a project with 1,000 secrets in each of
// dev, staging and prod.
func benchProject(b *testing.B, d store.Dialect) (*browser, string) {
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
	return br, pid
}

// benchPage times GETs of path and reports p50 and p99; the page must hold
// marker (exactly want times when want > 0).
func benchPage(b *testing.B, br *browser, path, marker string, want int) {
	p := br.get(path)
	mustStatus(b, p, 200, path)
	if n := strings.Count(p.body, marker); n == 0 || (want > 0 && n != want) {
		b.Fatalf("%s holds %q %d times (want %d)", path, marker, n, want)
	}
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		p := br.get(path)
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
