package secret_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/secret"
)

type fakeSecrets map[string]string // "env:path:key" -> value

func (f fakeSecrets) lookup(_ context.Context, env, path, key string) (string, bool, bool, error) {
	if key == "FORBIDDEN" {
		return "", false, false, errs.PermissionDenied("readValue", "secrets")
	}
	v, ok := f[env+":"+path+":"+key]
	return v, false, ok, nil
}

func TestExpand(t *testing.T) {
	s := fakeSecrets{
		"dev:/:HOST":        "db.local",
		"dev:/:PORT":        "5432",
		"dev:/:URL":         "postgres://${HOST}:${PORT}/app",
		"prod:/:HOST":       "db.prod",
		"prod:/a/b:TOKEN":   "t0k",
		"dev:/:CHAIN":       "${URL}?x=${prod.a.b.TOKEN}",
		"dev:/:SELF":        "${SELF}",
		"dev:/:PING":        "${PONG}",
		"dev:/:PONG":        "${PING}",
		"dev:/sub:LOCAL":    "${HOST}",
		"dev:/sub:HOST":     "sub.local",
		"dev:/:DOTTED-KEY_": "ok",
	}
	cases := []struct {
		name, value, path, want string
	}{
		{"plain", "no refs", "/", "no refs"},
		{"same folder", "${HOST}:${PORT}", "/", "db.local:5432"},
		{"other env root", "${prod.HOST}", "/", "db.prod"},
		{"other env folder", "${prod.a.b.TOKEN}", "/", "t0k"},
		{"nested", "${CHAIN}", "/", "postgres://db.local:5432/app?x=t0k"},
		{"missing stays", "${NOPE} and ${prod.x.NOPE}", "/", "${NOPE} and ${prod.x.NOPE}"},
		{"relative to the referencing folder", "${LOCAL}", "/sub", "sub.local"},
		{"odd key chars", "${DOTTED-KEY_}", "/", "ok"},
		{"not a reference", "$HOME ${ unclosed", "/", "$HOME ${ unclosed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := secret.Expand(context.Background(), c.value, "dev", c.path, s.lookup)
			if err != nil || got != c.want {
				t.Fatalf("Expand(%q) = %q, %v; want %q", c.value, got, err, c.want)
			}
		})
	}
	for _, v := range []string{"${SELF}", "${PING}"} {
		if _, err := secret.Expand(context.Background(), v, "dev", "/", s.lookup); !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "cycle") {
			t.Errorf("Expand(%q): %v, want a cycle error", v, err)
		}
	}
	// A chain deeper than the limit is refused, not followed forever.
	deep := fakeSecrets{}
	for i := range 20 {
		deep[fmt.Sprintf("dev:/:K%d", i)] = fmt.Sprintf("${K%d}", i+1)
	}
	if _, err := secret.Expand(context.Background(), "${K0}", "dev", "/", deep.lookup); !errs.Is(err, errs.Invalid) {
		t.Fatalf("deep chain: %v", err)
	}
	// Permission errors surface.
	_, err := secret.Expand(context.Background(), "${FORBIDDEN}", "dev", "/", s.lookup)
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind != errs.Forbidden {
		t.Fatalf("forbidden reference: %v", err)
	}
}

func BenchmarkExpand(b *testing.B) {
	s := fakeSecrets{"dev:/:HOST": "db.local", "dev:/:PORT": "5432", "dev:/:USER": "app", "prod:/a:PASS": "pw"}
	v := "postgres://${USER}:${prod.a.PASS}@${HOST}:${PORT}/db?sslmode=disable&x=${MISSING}"
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := secret.Expand(ctx, v, "dev", "/", s.lookup); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"${A}", "${a.b.C}", "x${A}${B}y", "${", "${A.}", "${.A}", "$${A}}"} {
		f.Add(s)
	}
	s := fakeSecrets{"dev:/:A": "${B}", "dev:/:B": "b", "a:/b:C": "${A}"}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := secret.Expand(context.Background(), v, "dev", "/", s.lookup)
		if err == nil && !strings.Contains(v, "${") && got != v {
			t.Fatalf("value without references changed: %q -> %q", v, got)
		}
	})
}

// countingLookup counts lookups per reference.
type countingLookup struct {
	fakeSecrets
	n map[string]int
}

func (c *countingLookup) lookup(ctx context.Context, env, path, key string) (string, bool, bool, error) {
	c.n[env+":"+path+":"+key]++
	return c.fakeSecrets.lookup(ctx, env, path, key)
}

func TestExpandBudgetAndMemo(t *testing.T) {
	ctx := context.Background()
	// Five levels of 100 references: 10^10 bytes if expanded in full.
	c := &countingLookup{fakeSecrets: fakeSecrets{"dev:/:L5": "y"}, n: map[string]int{}}
	for i := 1; i <= 4; i++ {
		c.fakeSecrets[fmt.Sprintf("dev:/:L%d", i)] = strings.Repeat(fmt.Sprintf("${L%d}", i+1), 100)
	}
	_, err := secret.Expand(ctx, "${L1}", "dev", "/", c.lookup)
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("five levels: %v, want the budget error", err)
	}
	for k, n := range c.n {
		if n != 1 {
			t.Errorf("%s looked up %d times; each reference is looked up once per request", k, n)
		}
	}
	// Within budget, memoised values are reused and the result is exact.
	c.n = map[string]int{}
	x := secret.NewExpander(c.lookup)
	got, err := x.Expand(ctx, "${L3}", "dev", "/")
	if err != nil || got != strings.Repeat("y", 100*100) {
		t.Fatalf("three levels: %d bytes, %v", len(got), err)
	}
	// The budget is shared by every value one expander expands.
	x = secret.NewExpander(c.lookup).WithBudget(25000, 1<<20) // one ${L3} costs 20,100 bytes (100 + 10,000 + 10,000)
	if _, err := x.Expand(ctx, "${L3}", "dev", "/"); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Expand(ctx, "${L3}", "dev", "/"); !errs.Is(err, errs.Invalid) {
		t.Fatalf("second expansion over a shared budget: %v", err)
	}
	// The reference count is a budget too.
	x = secret.NewExpander(c.lookup).WithBudget(1<<30, 50)
	if _, err := x.Expand(ctx, "${L4}", "dev", "/"); !errs.Is(err, errs.Invalid) {
		t.Fatalf("100 references over a budget of 50: %v", err)
	}
	// A chain that reaches a memoised value deeper than where it was first
	// expanded still honours MaxReferenceDepth.
	deep := fakeSecrets{}
	for i := range secret.MaxReferenceDepth {
		deep[fmt.Sprintf("dev:/:K%d", i)] = fmt.Sprintf("${K%d}", i+1)
	}
	deep[fmt.Sprintf("dev:/:K%d", secret.MaxReferenceDepth)] = "end"
	x = secret.NewExpander(deep.lookup)
	if got, err := x.Expand(ctx, "${K1}", "dev", "/"); err != nil || got != "end" {
		t.Fatalf("K1: %q, %v", got, err)
	}
	if _, err := x.Expand(ctx, "${K0}", "dev", "/"); err == nil {
		t.Fatal("K0 is one level too deep, even with K1 memoised")
	}
	if _, err := secret.Expand(ctx, "${K0}", "dev", "/", deep.lookup); err == nil {
		t.Fatal("K0 is one level too deep")
	}
}

func TestExpandHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := fakeSecrets{"dev:/:A": "a"}
	if _, err := secret.Expand(ctx, "${A}${A}", "dev", "/", s.lookup); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v", err)
	}
}

// TestCheckingExpansionReachesEveryReference: a checking expansion (a
// write's) goes past a cycle and the depth limit to look up every reference
// a value reaches, including below a secret first met at the limit and met
// again nearer the top, so a forbidden one is found however it hides.
func TestCheckingExpansionReachesEveryReference(t *testing.T) {
	s := fakeSecrets{"dev:/:SELF": "${SELF}", "dev:/:S": "${FORBIDDEN}", "dev:/:OK": "fine"}
	// A0 -> A1 -> ... -> S: S's value is reached at the depth limit.
	for i := range secret.MaxReferenceDepth - 1 {
		next := fmt.Sprintf("${A%d}", i+1)
		if i == secret.MaxReferenceDepth-2 {
			next = "${S}"
		}
		s[fmt.Sprintf("dev:/:A%d", i)] = next
	}
	check := func(v string) error {
		_, err := secret.NewExpander(s.lookup).Checking().Expand(context.Background(), v, "dev", "/")
		return err
	}
	for _, v := range []string{"${SELF} ${FORBIDDEN}", "${A0} ${FORBIDDEN}", "${A0} ${S}", "${OK} ${SELF} ${A0} ${S}"} {
		if err := check(v); errs.KindOf(err) != errs.Forbidden {
			t.Errorf("checking %q: %v; want the forbidden reference found", v, err)
		}
		if _, err := secret.Expand(context.Background(), v, "dev", "/", s.lookup); err == nil {
			t.Errorf("a read of %q expanded", v)
		}
	}
	// A secret whose chain was cut below it, met through a memo entry at
	// the limit, marks what encloses it as cut too: B0 -> ... -> Y is
	// expanded again when Y is met nearer the top.
	for i := range secret.MaxReferenceDepth - 2 {
		next := fmt.Sprintf("${B%d}", i+1)
		if i == secret.MaxReferenceDepth-3 {
			next = "${Y}"
		}
		s[fmt.Sprintf("dev:/:B%d", i)] = next
	}
	s["dev:/:Y"] = "${S}"
	if err := check("${A0} ${B0} ${Y}"); errs.KindOf(err) != errs.Forbidden {
		t.Errorf("a chain cut through a memo entry: %v; want the forbidden reference found", err)
	}
	if err := check("${SELF} ${A0} ${OK} ${NOPE}"); err != nil {
		t.Errorf("a value with a cycle, a deep chain and nothing forbidden: %v", err)
	}
}
