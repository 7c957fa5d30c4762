package api_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/api"
	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// sseEvent is one server-sent event as a client parses it.
type sseEvent struct {
	Type string
	Data struct {
		ProjectType string
		Data        struct {
			EventType string
			Payload   []struct{ Environment, SecretPath, SecretKey string }
		}
	}
	Raw string
	At  time.Time
}

// stream is an open subscription.
type stream struct {
	events chan sseEvent
	raw    *bytes.Buffer
	done   chan struct{}
	cancel context.CancelFunc
}

// subscribe opens POST /api/v1/events/subscribe/project-events and fails the
// test unless it answers 200 text/event-stream.
func subscribe(t *testing.T, e *apptest.Env, token string, body any) *stream {
	t.Helper()
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.URL+"/api/v1/events/subscribe/project-events", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		t.Fatalf("subscribe: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), buf.String())
	}
	s := &stream{events: make(chan sseEvent, 100), raw: &bytes.Buffer{}, done: make(chan struct{}), cancel: cancel}
	raw := make(chan string, 1000)
	go func() {
		defer close(s.done)
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var lines []string
		for sc.Scan() {
			line := sc.Text()
			raw <- line
			if line != "" {
				lines = append(lines, line)
				if typ, ok := strings.CutPrefix(line, "event: "); ok {
					ev.Type = typ
				}
				if d, ok := strings.CutPrefix(line, "data: "); ok {
					if err := json.Unmarshal([]byte(d), &ev.Data); err != nil {
						t.Errorf("event data is not JSON: %q", d)
					}
				}
				continue
			}
			if ev.Type != "" {
				ev.Raw, ev.At = strings.Join(lines, "\n"), time.Now()
				s.events <- ev
			}
			ev, lines = sseEvent{}, nil
		}
	}()
	go func() {
		<-s.done
		close(raw)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
		for l := range raw {
			s.raw.WriteString(l + "\n")
		}
	})
	return s
}

// next waits for the next event.
func (s *stream) next(t *testing.T, within time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %s", within)
	}
	return sseEvent{}
}

// none checks that no event arrives within d.
func (s *stream) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-s.events:
		t.Fatalf("unexpected event %s", ev.Raw)
	case <-time.After(d):
	}
}

func register(projectID, env, path string) map[string]any {
	var reg []map[string]any
	for _, ev := range []string{"secret:create", "secret:update", "secret:delete"} {
		r := map[string]any{"event": ev}
		if env != "" {
			r["conditions"] = map[string]any{"environmentSlug": env, "secretPath": path}
		}
		reg = append(reg, r)
	}
	return map[string]any{"projectId": projectID, "register": reg}
}

func checkEvent(t *testing.T, ev sseEvent, typ, env, path, key string) {
	t.Helper()
	if ev.Type != typ || ev.Data.ProjectType != "secret-manager" || ev.Data.Data.EventType != typ || len(ev.Data.Data.Payload) != 1 {
		t.Fatalf("event %s, want %s", ev.Raw, typ)
	}
	if p := ev.Data.Data.Payload[0]; p.Environment != env || p.SecretPath != path || p.SecretKey != key {
		t.Fatalf("event %s, want %s %s %s", ev.Raw, env, path, key)
	}
	if !strings.Contains(ev.Raw, "\nid: ") && !strings.HasPrefix(ev.Raw, "id: ") {
		t.Fatalf("event without id: %s", ev.Raw)
	}
}

func TestProjectEventsCreateUpdateDelete(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "watched"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "app"))
		s := subscribe(t, e, e.Token, register(p.ID, "dev", "/"))

		// Out of scope: another environment, another folder, another project.
		putSecret(t, e, e.Token, p.ID, "prod", "/", "OTHER_ENV", "value-prod-1")
		putSecret(t, e, e.Token, p.ID, "dev", "/app", "OTHER_FOLDER", "value-app-1")
		q := createProject(t, e, e.Token, map[string]any{"projectName": "unwatched"})
		putSecret(t, e, e.Token, q.ID, "dev", "/", "OTHER_PROJECT", "value-q-1")

		start := time.Now()
		putSecret(t, e, e.Token, p.ID, "dev", "/", "API_KEY", "value-create-1")
		ev := s.next(t, 2*time.Second)
		checkEvent(t, ev, "secret:create", "dev", "/", "API_KEY")
		t.Logf("%s: create event %s after the write began", d, ev.At.Sub(start))
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/API_KEY", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "value-update-2"})
		checkEvent(t, s.next(t, 2*time.Second), "secret:update", "dev", "/", "API_KEY")
		e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/API_KEY", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev"})
		checkEvent(t, s.next(t, 2*time.Second), "secret:delete", "dev", "/", "API_KEY")
		s.none(t, 200*time.Millisecond)

		// A project-wide subscription (no conditions, as infisical proxy sends)
		// sees every environment and folder.
		all := subscribe(t, e, e.Token, register(p.ID, "", ""))
		putSecret(t, e, e.Token, p.ID, "prod", "/", "WIDE", "value-wide-1")
		checkEvent(t, all.next(t, 2*time.Second), "secret:create", "prod", "/", "WIDE")
		// A glob over folders.
		deep := subscribe(t, e, e.Token, register(p.ID, "dev", "/**"))
		putSecret(t, e, e.Token, p.ID, "dev", "/app", "DEEP", "value-deep-1")
		checkEvent(t, deep.next(t, 2*time.Second), "secret:create", "dev", "/app", "DEEP")

		s.cancel()
		all.cancel()
		deep.cancel()
		<-s.done
		<-all.done
		<-deep.done
		for _, st := range []*stream{s, all, deep} {
			if strings.Contains(st.raw.String(), "value-") {
				t.Fatalf("a value reached an event stream:\n%s", st.raw.String())
			}
		}
	})
}

func TestProjectEventsPermissions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "guarded"})
		body := register(p.ID, "dev", "/")

		// Not a member, and a member without access.
		_, outsider := e.NewIdentity(t, "outsider", "member")
		assertError(t, e.Do(t, "POST", "/api/v1/events/subscribe/project-events", outsider, body), 403, "PermissionDenied")
		_, none := projectMember(t, e, p.ID, "no-access", "no-access")
		assertError(t, e.Do(t, "POST", "/api/v1/events/subscribe/project-events", none, body), 403, "PermissionDenied")

		// Read in prod only: dev is refused; a project-wide subscription only
		// carries what it may see.
		prodOnly := customRole(t, e, p.ID, "prod-only", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}, "conditions": map[string]any{"environment": "prod"}},
		})
		assertError(t, e.Do(t, "POST", "/api/v1/events/subscribe/project-events", prodOnly, body), 403, "PermissionDenied")
		s := subscribe(t, e, prodOnly, register(p.ID, "", ""))
		// Hidden by tag: an inverted rule on a tag hides the key.
		var tag struct{ Tag struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/tags", e.Token, map[string]any{"slug": "hidden", "color": "#f00"}).Decode(t, &tag)
		noHidden := customRole(t, e, p.ID, "no-hidden", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}},
			{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}, "inverted": true,
				"conditions": map[string]any{"secretTags": map[string]any{"$in": []string{"hidden"}}}},
		})
		h := subscribe(t, e, noHidden, register(p.ID, "dev", "/"))

		putSecret(t, e, e.Token, p.ID, "dev", "/", "DEV_KEY", "x")
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/TAGGED", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "y", "tagIds": []string{tag.Tag.ID}})
		putSecret(t, e, e.Token, p.ID, "prod", "/", "PROD_KEY", "z")
		checkEvent(t, s.next(t, 2*time.Second), "secret:create", "prod", "/", "PROD_KEY")
		checkEvent(t, h.next(t, 2*time.Second), "secret:create", "dev", "/", "DEV_KEY")
		h.none(t, 200*time.Millisecond)

		// Hostile registrations are 4xx, never a stream.
		for name, b := range map[string]any{
			"no project":    map[string]any{"register": []any{map[string]any{"event": "secret:create"}}},
			"no register":   map[string]any{"projectId": p.ID},
			"unknown event": map[string]any{"projectId": p.ID, "register": []any{map[string]any{"event": "secret:read"}}},
			"no env":        map[string]any{"projectId": p.ID, "register": []any{map[string]any{"event": "secret:create", "conditions": map[string]any{"secretPath": "/"}}}},
			"bad path":      map[string]any{"projectId": p.ID, "register": []any{map[string]any{"event": "secret:create", "conditions": map[string]any{"environmentSlug": "dev", "secretPath": "../etc"}}}},
			// No path is deeper than 32 folders; each event is matched against every segment.
			"deep glob": map[string]any{"projectId": p.ID, "register": []any{map[string]any{"event": "secret:create", "conditions": map[string]any{"environmentSlug": "dev", "secretPath": strings.Repeat("/*a*", 33)}}}},
			"eleven":    map[string]any{"projectId": p.ID, "register": make([]any, 11)},
		} {
			if r := e.Do(t, "POST", "/api/v1/events/subscribe/project-events", e.Token, b); r.Status/100 != 4 {
				t.Errorf("%s: %d %s", name, r.Status, r.Body)
			}
		}
	})
}

func TestProjectEventsStreamsEndOnShutdown(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "closing"})
	s := subscribe(t, e, e.Token, register(p.ID, "", ""))
	// http.Server.Shutdown waits for handlers: CloseStreams, registered as a
	// shutdown hook, must end them.
	srv := &http.Server{Handler: e.App}
	srv.RegisterOnShutdown(e.App.CloseStreams)
	start := time.Now()
	e.App.CloseStreams()
	select {
	case <-s.done:
	case <-time.After(2 * time.Second):
		t.Fatal("stream still open after CloseStreams")
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("stream closed %s after shutdown began", time.Since(start))
}

func TestProjectEventsAcrossNodes(t *testing.T) {
	e1 := apptest.Bootstrapped(t, store.Postgres)
	e2 := apptest.Start(t, store.Postgres, apptest.Options{Share: e1})
	p := createProject(t, e1, e1.Token, map[string]any{"projectName": "two-nodes"})
	s := subscribe(t, e2, e1.Token, register(p.ID, "dev", "/"))
	var worst time.Duration
	for i, typ := range []string{"secret:create", "secret:update", "secret:delete"} {
		start := time.Now()
		switch i {
		case 0:
			putSecret(t, e1, e1.Token, p.ID, "dev", "/", "SHARED", "value-1")
		case 1:
			e1.Must(t, 200, "PATCH", "/api/v3/secrets/raw/SHARED", e1.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "value-2"})
		case 2:
			e1.Must(t, 200, "DELETE", "/api/v3/secrets/raw/SHARED", e1.Token, map[string]any{"workspaceId": p.ID, "environment": "dev"})
		}
		committed := time.Now()
		ev := s.next(t, 2*time.Second)
		checkEvent(t, ev, typ, "dev", "/", "SHARED")
		lag := max(ev.At.Sub(committed), 0)
		worst = max(worst, lag)
		t.Logf("%s written on node 1 (request %s), received on node 2 %s after the response", typ, committed.Sub(start), lag)
	}
	t.Logf("worst lag from node 1's response to node 2's event: %s", worst)
}

func TestProjectEventsFeedLossEndsStreamsAndRecovers(t *testing.T) {
	e := apptest.Bootstrapped(t, store.Postgres)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "flaky-feed"})
	s := subscribe(t, e, e.Token, register(p.ID, "", ""))
	// Kill this database's LISTEN connection, as a PostgreSQL failover or a
	// network cut would.
	db, err := sql.Open("pgx", e.DBURL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminated %d LISTEN connections: %v", n, err)
	}
	ev := s.next(t, 5*time.Second)
	if ev.Type != "error" || !strings.Contains(ev.Raw, "interrupted") {
		t.Fatalf("want an error event, got %s", ev.Raw)
	}
	select {
	case <-s.done:
	case <-time.After(2 * time.Second):
		t.Fatal("stream still open after its error event")
	}
	// A new subscription is granted once the feed is back, and sees writes.
	again := subscribe(t, e, e.Token, register(p.ID, "", ""))
	putSecret(t, e, e.Token, p.ID, "dev", "/", "AFTER", "v")
	checkEvent(t, again.next(t, 2*time.Second), "secret:create", "dev", "/", "AFTER")
}

// TestProjectEventsEndWithTheirToken: a stream is checked again with its
// permissions, every secret.PermissionRefresh, and that includes its token:
// revoking an identity's access token, or deleting a service token, ends
// the streams it opened with an error event, where before they ran on for
// their hour. A stream whose token holds runs on across the checks.
func TestProjectEventsEndWithTheirToken(t *testing.T) {
	was := secret.SetPermissionRefresh(200 * time.Millisecond)
	t.Cleanup(func() { secret.SetPermissionRefresh(was) })
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "token-bound"})
		_, member := projectMember(t, e, p.ID, "watcher", "member")
		var st struct {
			ServiceToken     string
			ServiceTokenData struct{ ID string }
		}
		e.Must(t, 200, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "w", "workspaceId": p.ID,
			"scopes": []map[string]any{{"environment": "dev", "secretPath": "/"}}, "permissions": []string{"read"}}).Decode(t, &st)
		kept := subscribe(t, e, e.Token, register(p.ID, "dev", "/"))
		byMember := subscribe(t, e, member, register(p.ID, "dev", "/"))
		byService := subscribe(t, e, st.ServiceToken, register(p.ID, "dev", "/"))
		// A token with two uses: the stream is one, the checks count none.
		clientID := uaSetup(t, e, map[string]any{"accessTokenNumUsesLimit": 2})
		cs, _ := newSecret(t, e, map[string]any{})
		_, twoUses := login(t, e, clientID, cs)
		limited := subscribe(t, e, twoUses.AccessToken, register(p.ID, "dev", "/"))

		time.Sleep(700 * time.Millisecond) // several checks pass
		putSecret(t, e, e.Token, p.ID, "dev", "/", "BEFORE", "v")
		for _, s := range []*stream{kept, byMember, byService, limited} {
			checkEvent(t, s.next(t, 2*time.Second), "secret:create", "dev", "/", "BEFORE")
		}
		list := "/api/v3/secrets/raw?" + secretQ(p.ID, "dev", "/")
		e.Must(t, 200, "GET", list, twoUses.AccessToken, nil) // the second use
		if r := e.Do(t, "GET", list, twoUses.AccessToken, nil); r.Status != 401 {
			t.Fatalf("a third use of a two-use token: %d", r.Status)
		}

		e.Must(t, 200, "POST", "/api/v1/auth/token/revoke", "", map[string]any{"accessToken": member})
		e.Must(t, 200, "DELETE", "/api/v2/service-token/"+st.ServiceTokenData.ID, e.Token, nil)
		for name, s := range map[string]*stream{"revoked access token": byMember, "deleted service token": byService} {
			if ev := s.next(t, 3*time.Second); ev.Type != "error" || !strings.Contains(ev.Raw, "revoked") {
				t.Fatalf("%s: want an error event, got %s", name, ev.Raw)
			}
			select {
			case <-s.done:
			case <-time.After(2 * time.Second):
				t.Fatalf("%s: stream still open after its error event", name)
			}
		}
		putSecret(t, e, e.Token, p.ID, "dev", "/", "AFTER", "v")
		checkEvent(t, kept.next(t, 2*time.Second), "secret:create", "dev", "/", "AFTER")
	})
}

// TestProjectEventStreamsAreBounded: a node serves at most
// api.MaxStreamsPerActor streams of one actor and api.MaxStreams in all
// (429 beyond: each takes a connection, a goroutine and a subscription); a
// closed stream gives its place back.
func TestProjectEventStreamsAreBounded(t *testing.T) {
	perActor, total := api.MaxStreamsPerActor, api.MaxStreams
	api.MaxStreamsPerActor, api.MaxStreams = 2, 3
	t.Cleanup(func() { api.MaxStreamsPerActor, api.MaxStreams = perActor, total })
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "streams"})
	_, viewer := projectMember(t, e, p.ID, "stream-viewer", "viewer")
	body := register(p.ID, "dev", "/")
	const route = "/api/v1/events/subscribe/project-events"
	first := subscribe(t, e, e.Token, body)
	subscribe(t, e, e.Token, body)
	assertError(t, e.Do(t, "POST", route, e.Token, body), 429, "RateLimitExceeded") // the actor's budget
	// A service token's streams are its creator's: tokens are free to mint.
	var st struct{ ServiceToken string }
	e.Must(t, 200, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "w", "workspaceId": p.ID,
		"scopes": []map[string]any{{"environment": "dev", "secretPath": "/"}}, "permissions": []string{"read"}}).Decode(t, &st)
	assertError(t, e.Do(t, "POST", route, st.ServiceToken, body), 429, "RateLimitExceeded")
	subscribe(t, e, viewer, body)                                                  // another actor's
	assertError(t, e.Do(t, "POST", route, viewer, body), 429, "RateLimitExceeded") // the node's
	first.cancel()
	<-first.done
	// The place is given back when the closed stream's handler returns.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithCancel(context.Background())
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, "POST", e.URL+route, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+viewer)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if resp.StatusCode == 200 {
			t.Cleanup(func() { cancel(); resp.Body.Close() })
			break
		}
		resp.Body.Close()
		cancel()
		if resp.StatusCode != 429 || time.Now().After(deadline) {
			t.Fatalf("a stream after one was closed: %d", resp.StatusCode)
		}
	}
}

// TestProjectEventStreamsAreBoundedPerProjectAndOrganization: one project
// holds at most api.MaxStreamsPerProject streams and one organization
// api.MaxStreamsPerOrg, whichever actors open them (a member may make a
// project and mint it service tokens, each an actor of its own), so one
// member cannot take every place on the node.
func TestProjectEventStreamsAreBoundedPerProjectAndOrganization(t *testing.T) {
	perActor, perProject, perOrg, total := api.MaxStreamsPerActor, api.MaxStreamsPerProject, api.MaxStreamsPerOrg, api.MaxStreams
	api.MaxStreamsPerActor, api.MaxStreamsPerProject, api.MaxStreamsPerOrg, api.MaxStreams = 10, 2, 3, 100
	t.Cleanup(func() {
		api.MaxStreamsPerActor, api.MaxStreamsPerProject, api.MaxStreamsPerOrg, api.MaxStreams = perActor, perProject, perOrg, total
	})
	e := apptest.Bootstrapped(t, store.SQLite)
	p1 := createProject(t, e, e.Token, map[string]any{"projectName": "streams-one"})
	p2 := createProject(t, e, e.Token, map[string]any{"projectName": "streams-two"})
	_, viewer := projectMember(t, e, p1.ID, "stream-viewer-one", "viewer")
	const route = "/api/v1/events/subscribe/project-events"
	subscribe(t, e, e.Token, register(p1.ID, "dev", "/"))
	subscribe(t, e, viewer, register(p1.ID, "dev", "/"))
	assertError(t, e.Do(t, "POST", route, e.Token, register(p1.ID, "dev", "/")), 429, "RateLimitExceeded") // the project's
	// A caller who may not read the project is refused as such, before its
	// full count is looked at: it takes none of its places, and learns
	// nothing of its streams (403, not the project's 429).
	_, outsider := projectMember(t, e, p2.ID, "stream-outsider", "viewer")
	assertError(t, e.Do(t, "POST", route, outsider, register(p1.ID, "dev", "/")), 403, "PermissionDenied")
	subscribe(t, e, e.Token, register(p2.ID, "dev", "/"))
	assertError(t, e.Do(t, "POST", route, e.Token, register(p2.ID, "dev", "/")), 429, "RateLimitExceeded") // the organization's
}
