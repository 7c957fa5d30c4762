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
