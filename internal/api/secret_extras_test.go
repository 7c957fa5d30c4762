package api_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type metaOut struct {
	Key, Value  string
	IsEncrypted bool
}

type extrasOut struct {
	ID, SecretKey, SecretValue string
	Version                    int
	SecretMetadata             []metaOut
	SecretReminderRepeatDays   *int
	SecretReminderNote         *string
	SecretReminderRecipients   []string
}

const (
	recipientA = "0195f0a0-0000-7000-8000-00000000000a"
	recipientB = "0195f0a0-0000-7000-8000-00000000000b"
)

// wantExtras checks a secret's metadata and reminder; days 0 means none.
func wantExtras(t *testing.T, where string, s extrasOut, meta map[string]string, days int, note string, recipients ...string) {
	t.Helper()
	got := map[string]string{}
	for _, m := range s.SecretMetadata {
		got[m.Key] = m.Value
	}
	if len(got) != len(meta) || len(s.SecretMetadata) != len(meta) {
		t.Fatalf("%s: metadata %+v, want %v", where, s.SecretMetadata, meta)
	}
	for k, v := range meta {
		if got[k] != v {
			t.Fatalf("%s: metadata %+v, want %v", where, s.SecretMetadata, meta)
		}
	}
	switch {
	case days == 0 && s.SecretReminderRepeatDays != nil, days != 0 && (s.SecretReminderRepeatDays == nil || *s.SecretReminderRepeatDays != days):
		t.Fatalf("%s: repeat days %v, want %d", where, s.SecretReminderRepeatDays, days)
	case note == "" && s.SecretReminderNote != nil, note != "" && (s.SecretReminderNote == nil || *s.SecretReminderNote != note):
		t.Fatalf("%s: note %v, want %q", where, s.SecretReminderNote, note)
	}
	if recipients == nil {
		recipients = []string{}
	}
	if s.SecretReminderRecipients == nil || !slices.Equal(s.SecretReminderRecipients, recipients) {
		t.Fatalf("%s: recipients %v, want %v", where, s.SecretReminderRecipients, recipients)
	}
}

func md(kv ...string) []map[string]any {
	out := []map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		out = append(out, map[string]any{"key": kv[i], "value": kv[i+1]})
	}
	return out
}

// Metadata and reminders are stored with each version: every read answers
// them, an update that omits them keeps them, and a rollback restores the
// version's own.
func TestSecretMetadataAndRemindersRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "extras"})
		base := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/"}
		with := func(kv map[string]any) map[string]any {
			out := map[string]any{}
			for k, v := range base {
				out[k] = v
			}
			for k, v := range kv {
				out[k] = v
			}
			return out
		}
		var one struct{ Secret extrasOut }
		// What Terraform sends on create.
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/API_KEY", e.Token, with(map[string]any{"secretValue": "v1",
			"secretMetadata": md("owner", "team-a", "tier", "gold"), "secretReminderRepeatDays": 30,
			"secretReminderNote": "rotate it", "secretReminderRecipients": []string{recipientA, recipientB, recipientA}})).Decode(t, &one)
		v1 := map[string]string{"owner": "team-a", "tier": "gold"}
		wantExtras(t, "create", one.Secret, v1, 30, "rotate it", recipientA, recipientB)
		id := one.Secret.ID

		q := "?" + secretQ(p.ID, "dev", "/")
		reads := func(where string, meta map[string]string, days int, note string, recipients ...string) {
			t.Helper()
			var got struct{ Secret extrasOut }
			e.Must(t, 200, "GET", "/api/v3/secrets/raw/API_KEY"+q, e.Token, nil).Decode(t, &got)
			wantExtras(t, where+": get", got.Secret, meta, days, note, recipients...)
			e.Must(t, 200, "GET", "/api/v4/secrets/API_KEY?projectId="+p.ID+"&environment=dev&secretPath=/", e.Token, nil).Decode(t, &got)
			wantExtras(t, where+": v4 get", got.Secret, meta, days, note, recipients...)
			e.Must(t, 200, "GET", "/api/v3/secrets/raw/id/"+id, e.Token, nil).Decode(t, &got)
			wantExtras(t, where+": get by id", got.Secret, meta, days, note, recipients...)
			var list struct{ Secrets []extrasOut }
			e.Must(t, 200, "GET", "/api/v3/secrets/raw"+q, e.Token, nil).Decode(t, &list)
			i := slices.IndexFunc(list.Secrets, func(s extrasOut) bool { return s.SecretKey == "API_KEY" })
			if i < 0 {
				t.Fatalf("%s: list %+v", where, list.Secrets)
			}
			wantExtras(t, where+": list", list.Secrets[i], meta, days, note, recipients...)
		}
		reads("after create", v1, 30, "rotate it", recipientA, recipientB)

		// An update without them keeps them.
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/API_KEY", e.Token, with(map[string]any{"secretValue": "v2"})).Decode(t, &one)
		if one.Secret.Version != 2 {
			t.Fatalf("version %d", one.Secret.Version)
		}
		wantExtras(t, "update without extras", one.Secret, v1, 30, "rotate it", recipientA, recipientB)
		reads("after blind update", v1, 30, "rotate it", recipientA, recipientB)

		// An update with them replaces them; 0 days removes the reminder.
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/API_KEY", e.Token, with(map[string]any{"secretMetadata": md("owner", "team-b"),
			"secretReminderRepeatDays": 0, "secretReminderNote": "", "secretReminderRecipients": []string{}})).Decode(t, &one)
		v3 := map[string]string{"owner": "team-b"}
		wantExtras(t, "update with extras", one.Secret, v3, 0, "")
		reads("after update", v3, 0, "")

		// Each version answers its own.
		var hist struct{ SecretVersions []extrasOut }
		e.Must(t, 200, "GET", "/api/v1/secret/"+id+"/secret-versions", e.Token, nil).Decode(t, &hist)
		if len(hist.SecretVersions) != 3 {
			t.Fatalf("versions %+v", hist.SecretVersions)
		}
		wantExtras(t, "version 3", hist.SecretVersions[0], v3, 0, "")
		wantExtras(t, "version 2", hist.SecretVersions[1], v1, 30, "rotate it", recipientA, recipientB)
		wantExtras(t, "version 1", hist.SecretVersions[2], v1, 30, "rotate it", recipientA, recipientB)
		var old struct{ Secret extrasOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/API_KEY"+q+"&version=1", e.Token, nil).Decode(t, &old)
		wantExtras(t, "get version 1", old.Secret, v1, 30, "rotate it", recipientA, recipientB)

		// A rollback restores the version's metadata and reminder.
		e.Must(t, 200, "POST", "/api/v1/secret/"+id+"/secret-versions/1/rollback", e.Token, nil).Decode(t, &one)
		if one.Secret.Version != 4 || one.Secret.SecretValue != "v1" {
			t.Fatalf("rollback %+v", one.Secret)
		}
		wantExtras(t, "rollback", one.Secret, v1, 30, "rotate it", recipientA, recipientB)
		reads("after rollback", v1, 30, "rotate it", recipientA, recipientB)

		// Batch create, batch update (omitted = unchanged) and upsert.
		var many struct{ Secrets []extrasOut }
		e.Must(t, 200, "POST", "/api/v3/secrets/batch/raw", e.Token, with(map[string]any{"secrets": []map[string]any{
			{"secretKey": "B1", "secretValue": "x", "secretMetadata": md("k", "v"), "secretReminderRepeatDays": 7},
			{"secretKey": "B2", "secretValue": "y"},
		}})).Decode(t, &many)
		wantExtras(t, "batch create B1", many.Secrets[0], map[string]string{"k": "v"}, 7, "")
		wantExtras(t, "batch create B2", many.Secrets[1], map[string]string{}, 0, "")
		e.Must(t, 200, "PATCH", "/api/v3/secrets/batch/raw", e.Token, with(map[string]any{"mode": "upsert", "secrets": []map[string]any{
			{"secretKey": "B1", "secretReminderNote": "weekly"},
			{"secretKey": "B2", "secretMetadata": md("a", "1")},
			{"secretKey": "B3", "secretValue": "z", "secretMetadata": md("new", "yes"), "secretReminderRepeatDays": 365},
		}})).Decode(t, &many)
		wantExtras(t, "batch update B1", many.Secrets[0], map[string]string{"k": "v"}, 7, "weekly")
		wantExtras(t, "batch update B2", many.Secrets[1], map[string]string{"a": "1"}, 0, "")
		wantExtras(t, "batch upsert B3", many.Secrets[2], map[string]string{"new": "yes"}, 365, "")
		var got struct{ Secret extrasOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/B1"+q, e.Token, nil).Decode(t, &got)
		wantExtras(t, "read B1", got.Secret, map[string]string{"k": "v"}, 7, "weekly")
	})
}

// Metadata values and reminder notes are sealed like values: neither is in
// the database file in clear.
func TestSecretMetadataAndReminderNoteSealedAtRest(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "sealed-extras"})
	const metaValue = "planted-metadata-9b1e"
	const note = "planted-reminder-note-4c2f"
	const key = "SEALED_EXTRAS_KEY"
	e.Must(t, 200, "POST", "/api/v3/secrets/raw/"+key, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
		"secretValue": "v", "secretMetadata": md("planted", metaValue), "secretReminderRepeatDays": 10, "secretReminderNote": note})
	e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/"+key, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
		"secretMetadata": md("planted", metaValue+"-2"), "secretReminderNote": note + "-2"})
	var all []byte
	for _, suffix := range []string{"", "-wal"} {
		b, _ := os.ReadFile(e.DB.Path() + suffix)
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte(key)) {
		t.Fatal("the database file does not hold the secret at all: wrong file?")
	}
	for _, v := range []string{metaValue, note} {
		if bytes.Contains(all, []byte(v)) {
			t.Fatalf("%q is in the database file in clear", v)
		}
	}
}

// Oversized or malformed metadata and reminders are 422s on every write, and
// change nothing.
func TestSecretMetadataAndReminderValidation(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "extras-validation"})
	putSecret(t, e, e.Token, p.ID, "dev", "/", "EXISTING", "v")
	tooMany := []map[string]any{}
	for i := range 101 {
		tooMany = append(tooMany, map[string]any{"key": "k" + strings.Repeat("x", i), "value": "v"})
	}
	cases := []struct {
		name string
		body map[string]any
	}{
		{"too many entries", map[string]any{"secretMetadata": tooMany}},
		{"empty key", map[string]any{"secretMetadata": md("", "v")}},
		{"long key", map[string]any{"secretMetadata": md(strings.Repeat("k", 129), "v")}},
		{"long value", map[string]any{"secretMetadata": md("k", strings.Repeat("v", 4097))}},
		{"duplicate key", map[string]any{"secretMetadata": md("k", "1", "k", "2")}},
		{"negative days", map[string]any{"secretReminderRepeatDays": -1}},
		{"too many days", map[string]any{"secretReminderRepeatDays": 366}},
		{"long note", map[string]any{"secretReminderNote": strings.Repeat("n", 1025)}},
		{"recipient not an id", map[string]any{"secretReminderRecipients": []string{"someone@example.com"}}},
	}
	scope := func(m map[string]any) map[string]any {
		out := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			create := scope(c.body)
			create["secretValue"] = "v"
			assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/NEW_ONE", e.Token, create), 422, "ValidationFailure")
			assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/EXISTING", e.Token, scope(c.body)), 422, "ValidationFailure")
			item := map[string]any{"secretKey": "NEW_TWO", "secretValue": "v"}
			for k, v := range c.body {
				item[k] = v
			}
			assertError(t, e.Do(t, "POST", "/api/v3/secrets/batch/raw", e.Token, scope(map[string]any{"secrets": []any{item}})), 422, "ValidationFailure")
			item["secretKey"] = "EXISTING"
			assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/batch/raw", e.Token, scope(map[string]any{"secrets": []any{item}})), 422, "ValidationFailure")
		})
	}
	// Nothing was written: EXISTING is at version 1 and nothing else exists.
	secs := listSecrets(t, e, e.Token, secretQ(p.ID, "dev", "/"))
	if len(secs) != 1 || secs[0].SecretKey != "EXISTING" || secs[0].Version != 1 {
		t.Fatalf("secrets after refused writes %+v", secs)
	}
	// The limits themselves are accepted.
	ok := scope(map[string]any{"secretValue": "v", "secretMetadata": md(strings.Repeat("k", 128), strings.Repeat("v", 4096)),
		"secretReminderRepeatDays": 365, "secretReminderNote": strings.Repeat("n", 1024)})
	e.Must(t, 200, "POST", "/api/v3/secrets/raw/AT_LIMITS", e.Token, ok)
}
