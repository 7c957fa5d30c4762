package store

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// The audit metadata encoder writes what json.Marshal writes, byte for byte,
// whatever the values: the rows read back by AuditEvents, and compared by
// anyone holding older rows, do not change.
func TestMetadataJSONMatchesMarshal(t *testing.T) {
	odd := []string{"", "plain", `quote"back\slash`, "<script>&amp;", "tab\tnew\nline\r", "\x00\x01\x1f\x7f",
		"héllo wörld", "日本語", "\u2028\u2029", "bad \xff\xfe utf-8", "emoji 🔑", "/a/b/c", "${K001}-${K002}"}
	cases := []map[string]any{
		nil,
		{},
		{"environment": "dev", "secretPath": "/", "numberOfSecrets": 100},
		{"identityId": "0190-aa", "name": "bench"},
		{"userId": "u", "email": "a@b.c", "username": "a@b.c"},
		{"secretVersion": int64(-3), "ok": true, "no": false, "none": nil, "i32": int32(7)},
		{"Zeta": 1, "alpha": 2, "Alpha": 3, "_x": 4, "a b": 5, "ä": 6},
		{"float": 1.5},                       // falls back
		{"nested": map[string]any{"a": "b"}}, // falls back
		{"list": []string{"a", "b"}},         // falls back
		{"when": time.Unix(0, 0).UTC()},      // falls back
		{"ptr": (*int)(nil), "s": "x"},       // falls back
	}
	for i, s := range odd {
		cases = append(cases, map[string]any{"v": s, s: i})
	}
	big := map[string]any{}
	for i := range 40 {
		big[fmt.Sprintf("k%02d", 39-i)] = i
		if i == 15 || i == 16 || i == 39 {
			m := map[string]any{}
			for k, v := range big {
				m[k] = v
			}
			cases = append(cases, m)
		}
	}
	for _, m := range cases {
		want := "{}"
		if m != nil {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			want = string(b)
		}
		if got := auditMetadataJSON(m); got != want {
			t.Errorf("auditMetadataJSON(%#v)\n got %s\nwant %s", m, got, want)
		}
	}
}

func FuzzMetadataJSON(f *testing.F) {
	f.Add("environment", "dev", int64(100), true)
	f.Add("<k>", "\xff\u2028\"", int64(-1), false)
	f.Fuzz(func(t *testing.T, k, v string, n int64, b bool) {
		m := map[string]any{k: v, k + "n": n, "b" + k: b, "z": nil}
		want, _ := json.Marshal(m)
		if got := auditMetadataJSON(m); got != string(want) {
			t.Fatalf("got %s want %s", got, want)
		}
	})
}
