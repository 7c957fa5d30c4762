package authz_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

func mustRules(t testing.TB, js string) []authz.Rule {
	t.Helper()
	r, err := authz.ParseRules([]byte(js))
	if err != nil {
		t.Fatalf("ParseRules(%s): %v", js, err)
	}
	return r
}

func builtin(t testing.TB, slug string) authz.Set {
	t.Helper()
	r, ok := authz.ProjectRoleRules(slug)
	if !ok {
		t.Fatalf("no built-in role %q", slug)
	}
	return authz.NewSet(r)
}

func TestViewerReadsButCannotWrite(t *testing.T) {
	v := builtin(t, "viewer")
	f := &authz.Fields{Environment: "dev", SecretPath: "/"}
	if !v.Can(authz.ActRead, authz.SubSecrets, f) || !v.Can(authz.ActRead, authz.SubFolders, f) {
		t.Fatal("viewer cannot read")
	}
	for _, a := range []string{authz.ActCreate, authz.ActEdit, authz.ActDelete} {
		for _, s := range []string{authz.SubSecrets, authz.SubFolders, authz.SubEnvironments, authz.SubImports} {
			if v.Can(a, s, f) {
				t.Errorf("viewer can %s %s", a, s)
			}
		}
	}
	err := v.Check(authz.ActCreate, authz.SubSecrets, f)
	e, ok := err.(*errs.Error)
	if !ok || e.Kind != errs.Forbidden || e.Code != "PermissionDenied" || e.Message != "You are not allowed to create on secrets" {
		t.Fatalf("denial = %#v", err)
	}
}

func TestBuiltinRoles(t *testing.T) {
	f := &authz.Fields{Environment: "prod", SecretPath: "/x"}
	if !builtin(t, "admin").Can(authz.ActDelete, authz.SubRole, nil) || !builtin(t, "admin").Can(authz.ActCreate, authz.SubSecrets, f) {
		t.Error("admin lacks rights")
	}
	m := builtin(t, "member")
	if !m.Can(authz.ActCreate, authz.SubSecrets, f) || m.Can(authz.ActCreate, authz.SubRole, nil) || m.Can(authz.ActDelete, authz.SubWorkspace, nil) {
		t.Error("member rights wrong")
	}
	if builtin(t, "no-access").Can(authz.ActRead, authz.SubSecrets, f) {
		t.Error("no-access can read")
	}
	if (authz.Set{}).Can(authz.ActRead, authz.SubSecrets, nil) {
		t.Error("zero Set allows")
	}
	if _, ok := authz.ProjectRoleRules("root"); ok {
		t.Error("unknown role found")
	}
	if !authz.IsBuiltinProjectRole("custom") || authz.IsBuiltinProjectRole("deployer") {
		t.Error("IsBuiltinProjectRole")
	}
	org, _ := authz.OrgRoleRules("member")
	if s := authz.NewSet(org); !s.Can(authz.ActCreate, authz.SubWorkspace, nil) || s.Can(authz.ActCreate, authz.SubIdentity, nil) {
		t.Error("org member rights wrong")
	}
}

func TestGlobScopedRole(t *testing.T) {
	s := authz.NewSet(mustRules(t, `[{"subject":"secrets","action":["read","create","edit","delete"],
		"conditions":{"environment":"dev","secretPath":{"$glob":"/app/**"}}}]`))
	cases := []struct {
		name, env, path string
		want            bool
	}{
		{"app itself in dev", "dev", "/app", true},
		{"deep under app in dev", "dev", "/app/x/y", true},
		{"root in dev", "dev", "/", false},
		{"sibling prefix in dev", "dev", "/application", false},
		{"app in prod", "prod", "/app/x", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := s.Can(authz.ActCreate, authz.SubSecrets, &authz.Fields{Environment: c.env, SecretPath: c.path}); got != c.want {
				t.Fatalf("Can = %v, want %v", got, c.want)
			}
		})
	}
	if s.Can(authz.ActRead, authz.SubFolders, &authz.Fields{Environment: "dev", SecretPath: "/app"}) {
		t.Fatal("rule for secrets grants folders")
	}
	if !s.Can(authz.ActRead, authz.SubSecrets, nil) {
		t.Fatal("subject-level check ignores conditions")
	}
}

func TestInvertedRuleOrder(t *testing.T) {
	allow := `{"subject":"secrets","action":"read"}`
	deny := `{"subject":"secrets","action":"read","inverted":true,"conditions":{"environment":"prod"}}`
	later := authz.NewSet(mustRules(t, "["+allow+","+deny+"]"))
	prod, dev := &authz.Fields{Environment: "prod", SecretPath: "/"}, &authz.Fields{Environment: "dev", SecretPath: "/"}
	if later.Can(authz.ActRead, authz.SubSecrets, prod) || !later.Can(authz.ActRead, authz.SubSecrets, dev) {
		t.Fatal("an inverted rule after an allow must deny its objects only")
	}
	if !later.Can(authz.ActRead, authz.SubSecrets, nil) {
		t.Fatal("a conditional inverted rule must not deny at subject level")
	}
	earlier := authz.NewSet(mustRules(t, "["+deny+","+allow+"]"))
	if !earlier.Can(authz.ActRead, authz.SubSecrets, prod) {
		t.Fatal("a later allow overrides an earlier inverted rule")
	}
	// Rules from two roles: the second role's rules come later.
	deny2 := mustRules(t, `[{"subject":"secrets","action":"read","inverted":true}]`)
	if authz.NewSet(mustRules(t, "["+allow+"]"), deny2).Can(authz.ActRead, authz.SubSecrets, nil) {
		t.Fatal("unconditional inverted rule must deny at subject level")
	}
}

// TestEveryRoleThatDeniesHolds joins two roles that each deny something
// (given in both orders, though JoinRoles sorts them alike): one role's refusal is not undone by the other role's
// grant, whichever comes last; a role's own re-allow still holds within
// it, and a privilege still decides over the roles.
func TestEveryRoleThatDeniesHolds(t *testing.T) {
	// Each grants what the other denies, so whichever is joined last
	// undoes the other's denial if the last matching rule decides.
	noProd := `[{"subject":"secrets","action":["read","delete"]},
		{"subject":"secrets","action":"read","inverted":true,"conditions":{"environment":"prod"}},
		{"subject":"secrets","action":"read","conditions":{"environment":"prod","secretPath":{"$glob":"/public/**"}}}]`
	noDelete := `[{"subject":"secrets","action":["read","create","delete"]},
		{"subject":"secrets","action":"delete","inverted":true}]`
	prod := &authz.Fields{Environment: "prod", SecretPath: "/db"}
	public := &authz.Fields{Environment: "prod", SecretPath: "/public/x"}
	dev := &authz.Fields{Environment: "dev", SecretPath: "/db"}
	for _, order := range [][2]string{{noProd, noDelete}, {noDelete, noProd}} {
		s := authz.JoinRoles([][]authz.Rule{mustRules(t, order[0]), mustRules(t, order[1])})
		if s.Can(authz.ActRead, authz.SubSecrets, prod) {
			t.Error("one role's grant undid another role's denial of prod")
		}
		if s.CanWithSomeTags(authz.ActRead, authz.SubSecrets, prod) {
			t.Error("CanWithSomeTags: one role's grant undid another role's denial of prod")
		}
		if s.Can(authz.ActDelete, authz.SubSecrets, dev) || s.Can(authz.ActDelete, authz.SubSecrets, nil) {
			t.Error("one role's grant undid another role's denial of delete")
		}
		if !s.Can(authz.ActRead, authz.SubSecrets, dev) || !s.Can(authz.ActCreate, authz.SubSecrets, prod) {
			t.Error("what neither role denies is refused")
		}
		if !s.Can(authz.ActRead, authz.SubSecrets, public) {
			t.Error("a role's own re-allow after its denial no longer holds")
		}
		withPrivilege := authz.JoinRoles([][]authz.Rule{mustRules(t, order[0]), mustRules(t, order[1])},
			mustRules(t, `[{"subject":"secrets","action":"read","conditions":{"environment":"prod"}}]`))
		if !withPrivilege.Can(authz.ActRead, authz.SubSecrets, prod) {
			t.Error("a privilege no longer decides over the roles")
		}
	}
}

func TestOperators(t *testing.T) {
	cases := []struct {
		name  string
		cond  string
		field authz.Fields
		want  bool
	}{
		{"eq string", `{"environment":"dev"}`, authz.Fields{Environment: "dev"}, true},
		{"eq mismatch", `{"environment":{"$eq":"dev"}}`, authz.Fields{Environment: "prod"}, false},
		{"neq", `{"environment":{"$neq":"prod"}}`, authz.Fields{Environment: "dev"}, true},
		{"neq same", `{"environment":{"$neq":"prod"}}`, authz.Fields{Environment: "prod"}, false},
		{"in", `{"environment":{"$in":["dev","staging"]}}`, authz.Fields{Environment: "staging"}, true},
		{"not in", `{"environment":{"$in":["dev","staging"]}}`, authz.Fields{Environment: "prod"}, false},
		{"glob star one segment", `{"secretPath":{"$glob":"/a/*"}}`, authz.Fields{SecretPath: "/a/b/c"}, false},
		{"glob braces", `{"secretName":{"$glob":"{DB,API}_*"}}`, authz.Fields{SecretName: "API_KEY"}, true},
		{"glob class", `{"secretName":{"$glob":"KEY_[0-9]"}}`, authz.Fields{SecretName: "KEY_7"}, true},
		{"two keys both hold", `{"environment":"dev","secretName":"A"}`, authz.Fields{Environment: "dev", SecretName: "A"}, true},
		{"two keys one fails", `{"environment":"dev","secretName":"A"}`, authz.Fields{Environment: "dev", SecretName: "B"}, false},
		{"tags in", `{"secretTags":{"$in":["prod-db"]}}`, authz.Fields{SecretTags: []string{"x", "prod-db"}}, true},
		{"tags none", `{"secretTags":{"$in":["prod-db"]}}`, authz.Fields{SecretTags: []string{"x"}}, false},
		{"two operators both hold", `{"environment":{"$neq":"prod","$in":["dev","prod"]}}`, authz.Fields{Environment: "dev"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := authz.NewSet(mustRules(t, `[{"subject":"secrets","action":"read","conditions":`+c.cond+`}]`))
			if got := s.Can(authz.ActRead, authz.SubSecrets, &c.field); got != c.want {
				t.Fatalf("Can = %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseRulesRejects(t *testing.T) {
	cases := map[string]string{
		"not an array":            `{"subject":"secrets"}`,
		"unknown subject":         `[{"subject":"nukes","action":"read"}]`,
		"unknown action":          `[{"subject":"secrets","action":"launch"}]`,
		"empty actions":           `[{"subject":"secrets","action":[]}]`,
		"missing subject":         `[{"action":"read"}]`,
		"unknown operator":        `[{"subject":"secrets","action":"read","conditions":{"environment":{"$regex":"x"}}}]`,
		"condition not for subj":  `[{"subject":"environments","action":"read","conditions":{"environment":"dev"}}]`,
		"relative secretPath":     `[{"subject":"secrets","action":"read","conditions":{"secretPath":"app"}}]`,
		"bad glob":                `[{"subject":"secrets","action":"read","conditions":{"secretPath":{"$glob":"/a/[b"}}}]`,
		"unclosed brace":          `[{"subject":"secrets","action":"read","conditions":{"secretName":{"$glob":"{a,b"}}}]`,
		"tags with eq":            `[{"subject":"secrets","action":"read","conditions":{"secretTags":"x"}}]`,
		"in with non-strings":     `[{"subject":"secrets","action":"read","conditions":{"environment":{"$in":[1]}}}]`,
		"action of wrong type":    `[{"subject":"secrets","action":5}]`,
		"identity cond on secret": `[{"subject":"secrets","action":"read","conditions":{"identityId":"x"}}]`,
		// secretPath values no normalised path can equal or match.
		"path with trailing slash": `[{"subject":"secrets","action":"read","inverted":true,"conditions":{"secretPath":{"$eq":"/prod/"}}}]`,
		"path with //":             `[{"subject":"secrets","action":"read","conditions":{"secretPath":{"$in":["/a","/b//c"]}}}]`,
		"path with ..":             `[{"subject":"secrets","action":"read","conditions":{"secretPath":{"$neq":"/a/../b"}}}]`,
		"relative glob":            `[{"subject":"secrets","action":"read","inverted":true,"conditions":{"secretPath":{"$glob":"payments/**"}}}]`,
		"glob with trailing slash": `[{"subject":"secret-folders","action":"read","conditions":{"secretPath":{"$glob":"/prod/"}}}]`,
	}
	// Lists whose cost every member holding them pays on each resolution.
	rules := func(n int, rule string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(rule+",", n), ",") + "]"
	}
	plain := `{"subject":"secrets","action":"read"}`
	cases["too many rules"] = rules(authz.MaxRules+1, plain)
	cases["too many bytes"] = rules(200, `{"subject":"secrets","action":"read","conditions":{"environment":{"$in":["`+strings.Repeat("e", 160)+`"]}}}`)
	cases["too much glob"] = rules(5, `{"subject":"secrets","action":"read","conditions":{"secretName":{"$glob":"`+strings.Repeat("a*", 250)+`"}}}`)
	for _, ok := range []string{rules(authz.MaxRules, plain), rules(4, `{"subject":"secrets","action":"read","conditions":{"secretName":{"$glob":"`+strings.Repeat("a*", 250)+`"}}}`)} {
		if _, err := authz.ParseRules([]byte(ok)); err != nil {
			t.Fatalf("a list within the bounds: %v", err)
		}
	}
	for name, js := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := authz.ParseRules([]byte(js))
			if !errs.Is(err, errs.Validation) {
				t.Fatalf("err = %v, want a validation error", err)
			}
		})
	}
	if r, err := authz.ParseRules([]byte(`[]`)); err != nil || len(r) != 0 {
		t.Fatalf("empty list: %v %v", r, err)
	}
	for _, ok := range []string{`{"$eq":"/"}`, `{"$in":["/","/a/b"]}`, `{"$glob":"**"}`, `{"$glob":"/a/**"}`, `{"$glob":"/"}`, `"/prod"`,
		`{"$glob":"{/prod,/staging}/**"}`, `{"$glob":"{/a,/b}"}`, `{"$glob":"/**/"}`, `{"$glob":"**/x"}`, `{"$glob":"?prod"}`} {
		if _, err := authz.ParseRules([]byte(`[{"subject":"secrets","action":"read","conditions":{"secretPath":` + ok + `}}]`)); err != nil {
			t.Errorf("secretPath %s refused: %v", ok, err)
		}
	}
}

func TestRulesRoundTripJSON(t *testing.T) {
	in := mustRules(t, `[{"subject":"secrets","action":"read","conditions":{"environment":"dev","secretPath":{"$glob":"/a/**"}}},
		{"subject":"secret-folders","action":["read","create"],"inverted":true}]`)
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := mustRules(t, string(b))
	s1, s2 := authz.NewSet(in), authz.NewSet(out)
	for _, f := range []authz.Fields{{Environment: "dev", SecretPath: "/a/b"}, {Environment: "prod", SecretPath: "/a"}, {Environment: "dev", SecretPath: "/"}} {
		for _, sub := range []string{authz.SubSecrets, authz.SubFolders} {
			if s1.Can(authz.ActRead, sub, &f) != s2.Can(authz.ActRead, sub, &f) {
				t.Fatalf("round trip changed the decision for %v on %s: %s", f, sub, b)
			}
		}
	}
	if !json.Valid(b) || string(b)[0] != '[' {
		t.Fatalf("bad JSON %s", b)
	}
}

func BenchmarkCheck(b *testing.B) {
	s := authz.NewSet(mustRules(b, `[
		{"subject":"secrets","action":["read","describeSecret","readValue"],"conditions":{"environment":{"$in":["dev","staging"]},"secretPath":{"$glob":"/app/**"}}},
		{"subject":"secrets","action":["create","edit","delete"],"conditions":{"environment":"dev","secretPath":{"$glob":"/app/*/config"}}},
		{"subject":"secrets","action":"read","inverted":true,"conditions":{"secretName":{"$glob":"ROOT_*"}}},
		{"subject":"secret-folders","action":["read","create"],"conditions":{"environment":"dev","secretPath":{"$glob":"/app/**"}}},
		{"subject":"secret-imports","action":"read","conditions":{"environment":"dev"}},
		{"subject":"dynamic-secrets","action":["read","lease"],"conditions":{"environment":"dev","secretPath":{"$glob":"/db/**"}}},
		{"subject":"environments","action":"read"},
		{"subject":"tags","action":"read"},
		{"subject":"role","action":"read"},
		{"subject":"workspace","action":"read"}]`))
	f := &authz.Fields{Environment: "dev", SecretPath: "/app/service/config", SecretName: "DB_URL"}
	b.ReportAllocs()
	for b.Loop() {
		if !s.Can(authz.ActRead, authz.SubSecrets, f) {
			b.Fatal("denied")
		}
	}
}

func TestCovers(t *testing.T) {
	role := func(name string) authz.Set {
		r, ok := authz.ProjectRoleRules(name)
		if !ok {
			t.Fatalf("no role %s", name)
		}
		return authz.NewSet(r)
	}
	custom := func(js string) authz.Set {
		r, err := authz.ParseRules([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		return authz.NewSet(r)
	}
	devOnly := custom(`[{"subject":"secrets","action":["read","edit"],"conditions":{"environment":"dev"}}]`)
	anyEnv := custom(`[{"subject":"secrets","action":["read","edit"]}]`)
	noProd := custom(`[{"subject":"secrets","action":["read","edit"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"environment":"prod"}}]`)
	noProdOrStaging := custom(`[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"environment":"prod"}}]`)
	noRestricted := custom(`[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"secretPath":{"$glob":"/restricted/**"}}}]`)
	underOpen := custom(`[{"subject":"secrets","action":["read"],"conditions":{"environment":"dev","secretPath":{"$glob":"/open/**"}}}]`)
	underRoot := custom(`[{"subject":"secrets","action":["read"],"conditions":{"environment":"dev","secretPath":{"$glob":"/**"}}}]`)
	denyBefore := custom(`[{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"environment":"prod"}},{"subject":"secrets","action":["read"]}]`)
	cases := []struct {
		name   string
		s, o   authz.Set
		covers bool
	}{
		{"admin covers admin", role("admin"), role("admin"), true},
		{"admin covers member", role("admin"), role("member"), true},
		{"member covers viewer", role("member"), role("viewer"), true},
		{"member covers member", role("member"), role("member"), true},
		{"member does not cover admin", role("member"), role("admin"), false},
		{"viewer does not cover member", role("viewer"), role("member"), false},
		{"anything covers no-access", role("viewer"), role("no-access"), true},
		{"unconditional covers conditional", anyEnv, devOnly, true},
		{"conditional does not cover unconditional", devOnly, anyEnv, false},
		{"a denial in s must be in other", noProd, anyEnv, false},
		{"the same denial is covered", noProd, noProdOrStaging, true},
		{"a denial placed before the grant does not restrict it", noProd, denyBefore, false},
		{"member does not cover a role without the member's denial", noProd, role("viewer"), false},
		// A denial that cannot apply to what other grants needs no mirror.
		{"a denial of another environment", noProd, devOnly, true},
		{"a denial of other environments by $in", custom(`[{"subject":"secrets","action":["read","edit"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"environment":{"$in":["prod","staging"]}}}]`), devOnly, true},
		{"a denial whose $in includes other's environment", custom(`[{"subject":"secrets","action":["read","edit"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"environment":{"$in":["prod","dev"]}}}]`), devOnly, false},
		{"a denied folder beside the granted one", noRestricted, underOpen, true},
		{"a denied folder below the granted one", noRestricted, underRoot, false},
		{"a denied folder's parent", noRestricted, custom(`[{"subject":"secrets","action":["read"],"conditions":{"secretPath":{"$glob":"/restricted"}}}]`), false},
		{"a denied folder whose name extends the granted one's", noRestricted, custom(`[{"subject":"secrets","action":["read"],"conditions":{"secretPath":{"$glob":"/restrict*"}}}]`), false},
		{"a denied path the granted glob does not match", custom(`[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"secretPath":"/restricted"}}]`), underOpen, true},
		{"a denied path the granted glob matches", custom(`[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"secretPath":"/open/x"}}]`), underOpen, false},
		{"an escaped glob character ends the fixed beginning", custom(`[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"secretPath":{"$glob":"/op\\*/**"}}}]`), underOpen, false},
		{"a tag denial is never told apart", custom(`[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"secretTags":{"$in":["x"]}}}]`), underOpen, false},
	}
	for _, c := range cases {
		if got := c.s.Covers(c.o); got != c.covers {
			t.Errorf("%s: Covers = %v", c.name, got)
		}
	}
}

// TestAllowsThroughout: what a service token's reach (an environment and a
// path pattern) asks of its creator's rules.
func TestAllowsThroughout(t *testing.T) {
	set := func(js string) authz.Set {
		r, err := authz.ParseRules([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		return authz.NewSet(r)
	}
	reach := func(env, glob string) authz.Conditions {
		r, err := authz.ServiceTokenRules([]authz.TokenScope{{Environment: env, SecretPath: glob}}, true, false)
		if err != nil {
			t.Fatal(err)
		}
		return r[0].Conditions
	}
	read := []authz.Action{authz.ActRead, authz.ActReadValue}
	cases := []struct {
		name  string
		rules string
		where authz.Conditions
		want  bool
	}{
		{"unconditional", `[{"subject":"secrets","action":["read"]}]`, reach("dev", "/"), true},
		{"readValue alone", `[{"subject":"secrets","action":["readValue"]}]`, reach("dev", "/"), true},
		{"describe alone", `[{"subject":"secrets","action":["describeSecret"]}]`, reach("dev", "/"), false},
		{"environment in a list", `[{"subject":"secrets","action":["read"],"conditions":{"environment":{"$in":["dev","prod"]}}}]`, reach("dev", "/"), true},
		{"another environment", `[{"subject":"secrets","action":["read"],"conditions":{"environment":"prod"}}]`, reach("dev", "/"), false},
		{"path glob above", `[{"subject":"secrets","action":["read"],"conditions":{"secretPath":{"$glob":"/app/**"}}}]`, reach("dev", "/app/x"), true},
		{"path glob the same", `[{"subject":"secrets","action":["read"],"conditions":{"secretPath":{"$glob":"/app/**"}}}]`, reach("dev", "/app"), true},
		{"path glob below", `[{"subject":"secrets","action":["read"],"conditions":{"secretPath":{"$glob":"/app/**"}}}]`, reach("dev", "/"), false},
		{"path glob beside", `[{"subject":"secrets","action":["read"],"conditions":{"secretPath":{"$glob":"/app/**"}}}]`, reach("dev", "/apple"), false},
		{"path glob one level", `[{"subject":"secrets","action":["read"],"conditions":{"secretPath":{"$glob":"/app/*"}}}]`, reach("dev", "/app/x"), false},
		{"path equal", `[{"subject":"secrets","action":["read"],"conditions":{"secretPath":"/"}}]`, reach("dev", "/"), false},
		{"a name condition", `[{"subject":"secrets","action":["read"],"conditions":{"secretName":"A"}}]`, reach("dev", "/"), false},
		{"a denial below", `[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"secretPath":{"$glob":"/x/**"}}}]`, reach("dev", "/"), false},
		{"a denial beside", `[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"secretPath":{"$glob":"/x/**"}}}]`, reach("dev", "/y"), true},
		{"a denial of describing", `[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["describeSecret"],"inverted":true,"conditions":{"environment":"dev"}}]`, reach("dev", "/"), false},
		{"a denial in another environment", `[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"environment":"prod"}}]`, reach("dev", "/"), true},
		{"a tag denial", `[{"subject":"secrets","action":["read"]},{"subject":"secrets","action":["readValue"],"inverted":true,"conditions":{"secretTags":{"$in":["x"]}}}]`, reach("dev", "/"), false},
	}
	for _, c := range cases {
		if got := set(c.rules).AllowsThroughout(authz.SubSecrets, read, append(read, authz.ActDescribeSecret), c.where); got != c.want {
			t.Errorf("%s: AllowsThroughout = %v", c.name, got)
		}
	}
}

// TestRuleJSONAlwaysHasInverted: Terraform's provider fills inverted only
// when the key is present, so a rule without it never re-plans clean.
func TestRuleJSONAlwaysHasInverted(t *testing.T) {
	b, err := json.Marshal(authz.Rule{Subject: "secrets", Actions: []string{"read"}})
	if err != nil || !strings.Contains(string(b), `"inverted":false`) {
		t.Fatalf("rule JSON %s, %v", b, err)
	}
}

// TestCoversUntil: what a member holds by a temporary grant covers only
// grants that end no later than it does; what it holds for good covers any.
// A temporary denial still counts while it lasts.
func TestCoversUntil(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	hour := now.Add(time.Hour)
	deny, _ := json.Marshal([]map[string]any{{"subject": "secrets", "action": []string{"edit"}, "inverted": true}})
	set, err := authz.GrantsSet([]authz.Grant{{Role: "viewer"}, {Role: "admin", Until: hour}, {Role: "privilege", Permissions: deny, Until: now.Add(2 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := authz.ProjectRoleRules("admin")
	viewer, _ := authz.ProjectRoleRules("viewer")
	edit := authz.NewSet([]authz.Rule{{Subject: authz.SubSecrets, Actions: []authz.Action{authz.ActEdit}}})
	create := authz.NewSet([]authz.Rule{{Subject: authz.SubSecrets, Actions: []authz.Action{authz.ActCreate}}})
	if until, ok := set.Temporary(); !ok || !until.Equal(hour) {
		t.Fatalf("Temporary() = %v, %v; want the admin grant's end", until, ok)
	}
	for _, c := range []struct {
		name  string
		other authz.Set
		end   time.Time
		want  bool
	}{
		{"viewer, held for good, for good", authz.NewSet(viewer), time.Time{}, true},
		{"viewer, held for good, for two days", authz.NewSet(viewer), now.Add(48 * time.Hour), true},
		{"create, held for the hour, within it", create, now.Add(30 * time.Minute), true},
		{"create, held for the hour, to its end", create, hour, true},
		{"create, held for the hour, a second longer", create, hour.Add(time.Second), false},
		{"create, held for the hour, for good", create, time.Time{}, false},
		{"admin, held for the hour, for good", authz.NewSet(admin), time.Time{}, false},
		{"edit, denied for two hours, within the hour", edit, now.Add(time.Minute), false},
		{"edit, denied for two hours, for good", edit, time.Time{}, false},
	} {
		if got := set.CoversUntil(c.other, c.end); got != c.want {
			t.Errorf("%s: CoversUntil = %v, want %v", c.name, got, c.want)
		}
	}
	// Nothing temporary: CoversUntil is Covers.
	plain, _ := authz.GrantsSet([]authz.Grant{{Role: "admin"}})
	if _, ok := plain.Temporary(); ok || !plain.CoversUntil(authz.NewSet(admin), time.Time{}) {
		t.Fatal("a permanent admin covers admin for good")
	}
}

// TestACustomOrgRoleCanHoldWhatMemberHolds: every rule of the built-in
// organization member role can be written in a custom one (app-connections
// connect included, as in Infisical), so a custom role can cover member and
// its holder invite or manage members.
func TestACustomOrgRoleCanHoldWhatMemberHolds(t *testing.T) {
	member, _ := authz.OrgRoleRules("member")
	raw, err := json.Marshal(member)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := authz.ParseOrgRules(raw)
	if err != nil {
		t.Fatalf("the member role's rules as a custom role: %v", err)
	}
	if !authz.NewSet(rules).Covers(authz.NewSet(member)) {
		t.Fatal("a custom role with the member role's rules does not cover member")
	}
}

// TestCanWithSomeTags: whether some set of tags would allow an action,
// decided without the object's tags: allow rules on tags are taken to
// match, deny rules on tags not to.
func TestCanWithSomeTags(t *testing.T) {
	s := authz.NewSet(mustRules(t, `[
		{"subject":"secrets","action":["read"],"conditions":{"environment":"dev"}},
		{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"secretTags":{"$in":["sensitive"]}}},
		{"subject":"secrets","action":["read"],"conditions":{"environment":"staging","secretTags":{"$in":["public"]}}},
		{"subject":"secrets","action":["read"],"inverted":true,"conditions":{"environment":"qa"}}]`))
	for env, want := range map[string]bool{"dev": true, "staging": true, "prod": false, "qa": false} {
		if got := s.CanWithSomeTags(authz.ActRead, authz.SubSecrets, &authz.Fields{Environment: env, SecretPath: "/", SecretName: "K"}); got != want {
			t.Errorf("%s: %v, want %v", env, got, want)
		}
	}
	// The exact answer still depends on the tags.
	if s.Can(authz.ActRead, authz.SubSecrets, &authz.Fields{Environment: "staging", SecretPath: "/", SecretName: "K"}) {
		t.Error("staging without the public tag is readable")
	}
}
