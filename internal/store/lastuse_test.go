package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestNoteAccessTokensUsed: a token's recorded last use only moves forward
// (nodes write theirs in any order), an unknown id is no error, and the
// write leaves the cache epoch alone.
func TestNoteAccessTokensUsed(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.Bootstrapped(t, d)
			ctx := context.Background()
			id, _ := e.NewIdentity(t, "used", "member")
			var list struct {
				Tokens []struct {
					ID                    string  `json:"id"`
					AccessTokenLastUsedAt *string `json:"accessTokenLastUsedAt"`
				} `json:"tokens"`
			}
			e.Must(t, 200, "GET", "/api/v1/auth/token-auth/identities/"+id+"/tokens", e.Token, nil).Decode(t, &list)
			if len(list.Tokens) != 1 {
				t.Fatalf("tokens %+v", list.Tokens)
			}
			tid := list.Tokens[0].ID
			lastUsed := func() time.Time {
				t.Helper()
				tok, _, err := e.DB.AccessTokenByID(ctx, tid)
				if err != nil {
					t.Fatal(err)
				}
				if tok.LastUsedAt == nil {
					return time.Time{}
				}
				return *tok.LastUsedAt
			}
			if !lastUsed().IsZero() {
				t.Fatal("a new token has a last use")
			}
			epoch, err := e.DB.Epoch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			later := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			earlier := later.Add(-time.Hour)
			if err := e.DB.NoteAccessTokensUsed(ctx, map[string]time.Time{tid: later, "01a00000-0000-7000-8000-000000000000": later}); err != nil {
				t.Fatal(err)
			}
			if got := lastUsed(); !got.Equal(later) {
				t.Fatalf("last use %v, want %v", got, later)
			}
			if err := e.DB.NoteAccessTokensUsed(ctx, map[string]time.Time{tid: earlier}); err != nil {
				t.Fatal(err)
			}
			if got := lastUsed(); !got.Equal(later) {
				t.Fatalf("an earlier use moved the last use back to %v", got)
			}
			if now, err := e.DB.Epoch(ctx); err != nil || now != epoch {
				t.Fatalf("epoch %d -> %d (%v): recording a use invalidated caches", epoch, now, err)
			}
			e.Must(t, 200, "GET", "/api/v1/auth/token-auth/identities/"+id+"/tokens", e.Token, nil).Decode(t, &list)
			if got := list.Tokens[0].AccessTokenLastUsedAt; got == nil || *got != later.Format("2006-01-02T15:04:05.000Z") {
				t.Fatalf("the API lists the last use as %v", got)
			}
		})
	}
}

// TestNoteServiceTokensUsed: as for access tokens, a service token's last
// use only moves forward, an unknown id is no error and the cache epoch is
// left alone.
func TestNoteServiceTokensUsed(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.Bootstrapped(t, d)
			ctx := context.Background()
			var p struct{ Project struct{ ID string } }
			e.Must(t, 200, "POST", "/api/v1/projects", e.Token, map[string]any{"projectName": "used"}).Decode(t, &p)
			var st struct{ ServiceTokenData struct{ ID string } }
			e.Must(t, 200, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "ci", "workspaceId": p.Project.ID,
				"scopes": []any{map[string]any{"environment": "dev", "secretPath": "/"}}, "permissions": []string{"read"}}).Decode(t, &st)
			id := st.ServiceTokenData.ID
			lastUsed := func() time.Time {
				t.Helper()
				tok, _, err := e.DB.ServiceTokenByID(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if tok.LastUsed == nil {
					return time.Time{}
				}
				return *tok.LastUsed
			}
			if !lastUsed().IsZero() {
				t.Fatal("a new service token has a last use")
			}
			epoch, err := e.DB.Epoch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			later := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			if err := e.DB.NoteServiceTokensUsed(ctx, map[string]time.Time{id: later, "01a00000-0000-7000-8000-000000000000": later}); err != nil {
				t.Fatal(err)
			}
			if got := lastUsed(); !got.Equal(later) {
				t.Fatalf("last use %v, want %v", got, later)
			}
			if err := e.DB.NoteServiceTokensUsed(ctx, map[string]time.Time{id: later.Add(-time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if got := lastUsed(); !got.Equal(later) {
				t.Fatalf("an earlier use moved the last use back to %v", got)
			}
			if now, err := e.DB.Epoch(ctx); err != nil || now != epoch {
				t.Fatalf("epoch %d -> %d (%v): recording a use invalidated caches", epoch, now, err)
			}
		})
	}
}
