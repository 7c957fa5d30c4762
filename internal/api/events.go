package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/events"
	"github.com/lockbox-dev/lockbox/internal/secret"
)

// Stream timing: a comment line every HeartbeatInterval keeps proxies from
// closing an idle stream; a stream lasts at most StreamLifetime (as
// Infisical's, an hour), after which clients reconnect and re-authenticate.
var (
	HeartbeatInterval = 15 * time.Second
	StreamLifetime    = time.Hour
)

// Open streams a node serves at once, in all, per organization, per
// project and per actor (an identity, a user, a service token: replicas
// sharing one identity each hold one); one more is refused 429. Each holds
// a connection, a goroutine and a subscription, and rechecks its token
// every secret.PermissionRefresh. The organization's and the project's
// limits keep one member (who may make a project and mint it service
// tokens, each an actor of its own) from taking every place on the node.
var (
	MaxStreams           = 10000
	MaxStreamsPerOrg     = 2500
	MaxStreamsPerProject = 1000
	MaxStreamsPerActor   = 100
)

// streamGate counts open streams, in all and per organization, project and
// actor.
type streamGate struct {
	mu    sync.Mutex
	total int
	byKey map[string]int
}

// gateKey is one counter a stream takes a place in, with its limit.
type gateKey struct {
	key   string
	limit int
}

func orgStreams(org string) gateKey     { return gateKey{"org:" + org, MaxStreamsPerOrg} }
func projectStreams(pid string) gateKey { return gateKey{"project:" + pid, MaxStreamsPerProject} }
func actorStreams(actor string) gateKey { return gateKey{"actor:" + actor, MaxStreamsPerActor} }

// enter takes a place in each of keys (and, with total, in the node's
// count), or none and reports false when one is at its limit; leave, with
// the same arguments, gives them back.
func (g *streamGate) enter(total bool, keys ...gateKey) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if total && g.total >= MaxStreams {
		return false
	}
	for _, k := range keys {
		if g.byKey[k.key] >= k.limit {
			return false
		}
	}
	if g.byKey == nil {
		g.byKey = map[string]int{}
	}
	if total {
		g.total++
	}
	for _, k := range keys {
		g.byKey[k.key]++
	}
	return true
}

func (g *streamGate) leave(total bool, keys ...gateKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if total {
		g.total--
	}
	for _, k := range keys {
		if g.byKey[k.key]--; g.byKey[k.key] <= 0 {
			delete(g.byKey, k.key)
		}
	}
}

func (s *Server) eventRoutes(m *routeMux) {
	m.Handle("POST /api/v1/events/subscribe/project-events", s.authed(s.subscribeProjectEvents))
}

type subscribeRequest struct {
	ProjectID string `json:"projectId"`
	Register  []struct {
		Event      string `json:"event"`
		Conditions *struct {
			EnvironmentSlug string  `json:"environmentSlug"`
			SecretPath      *string `json:"secretPath"`
		} `json:"conditions"`
	} `json:"register"`
}

// wireEvent is the data of one server-sent event, as Infisical sends it.
type wireEvent struct {
	ProjectType string `json:"projectType"`
	Data        struct {
		EventType string             `json:"eventType"`
		Payload   []wireEventPayload `json:"payload"`
	} `json:"data"`
}

type wireEventPayload struct {
	Environment string `json:"environment"`
	SecretPath  string `json:"secretPath"`
	SecretKey   string `json:"secretKey"`
}

// subscribeProjectEvents streams a project's secret events (server-sent
// events) to a caller allowed to see them, until the caller disconnects, the
// server shuts down or the stream's lifetime ends.
func (s *Server) subscribeProjectEvents(w http.ResponseWriter, r *http.Request) error {
	var req subscribeRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.ProjectID == "" {
		return field("projectId", "Required")
	}
	rules := make([]secret.WatchRule, len(req.Register))
	for i, reg := range req.Register {
		rules[i].Type = events.Type(reg.Event)
		if c := reg.Conditions; c != nil {
			if c.EnvironmentSlug == "" {
				return field("environmentSlug", "Required")
			}
			rules[i].Env, rules[i].Path = c.EnvironmentSlug, "/"
			if c.SecretPath != nil && *c.SecretPath != "" {
				rules[i].Path = *c.SecretPath
			}
		}
	}
	ctx := r.Context()
	who := actorFrom(ctx)
	// The caller's own places first; the project's once the caller is
	// known to read it, so nobody holds another project's places.
	// A service token's streams count as its creator's: tokens are free to
	// mint, and 25 of them took every place of an organization.
	actor := string(who.Kind) + ":" + who.ID
	if st := who.Service; st != nil && st.CreatorID != "" {
		actor = string(st.CreatorKind) + ":" + st.CreatorID
	}
	own := []gateKey{orgStreams(who.OrgID), actorStreams(actor)}
	if !s.streamGate.enter(true, own...) {
		return errs.RateLimitedf("Too many open event streams; close one or retry later")
	}
	defer s.streamGate.leave(true, own...)
	// The token is checked again with the permissions, every
	// secret.PermissionRefresh: a stream outlives its token's revocation,
	// expiry or deletion by at most that.
	tok, _ := bearer(r)
	ip, ua := clientIP(r), r.UserAgent()
	sub, err := s.svc.Secrets.Watch(ctx, actorFrom(ctx), req.ProjectID, rules, func(ctx context.Context) error {
		return s.auth.Recheck(ctx, tok, ip, ua)
	})
	if err != nil {
		return err
	}
	defer sub.Close()
	if !s.streamGate.enter(false, projectStreams(req.ProjectID)) {
		return errs.RateLimitedf("Too many open event streams; close one or retry later")
	}
	defer s.streamGate.leave(false, projectStreams(req.ProjectID))

	rc := http.NewResponseController(w)
	// The server's read and write timeouts are for ordinary requests; a stream
	// sets a write deadline before each write instead.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(HeartbeatInterval + 15*time.Second))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte(": connected\n\n")) {
		return nil
	}
	beat := time.NewTicker(HeartbeatInterval)
	defer beat.Stop()
	end := time.NewTimer(StreamLifetime)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.streams.Done():
			return nil
		case <-end.C:
			return nil
		case <-beat.C:
			if !write([]byte(": ping\n\n")) {
				return nil
			}
		case ev, ok := <-sub.C:
			if !ok {
				write(streamError(sub.Err()))
				return nil
			}
			if !write(sseEvent(ev)) {
				return nil
			}
		}
	}
}

// sseEvent renders one event; it never holds a value.
func sseEvent(ev events.Event) []byte {
	var d wireEvent
	d.ProjectType = "secret-manager"
	d.Data.EventType = string(ev.Type)
	d.Data.Payload = []wireEventPayload{{Environment: ev.Env, SecretPath: ev.Path, SecretKey: ev.Key}}
	b, _ := json.Marshal(d)
	return fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", time.Now().UnixMilli(), ev.Type, b)
}

// streamError is the last event of a stream that the server ended.
func streamError(err error) []byte {
	msg := "Event stream ended; subscribe again"
	switch e, ok := errors.AsType[*errs.Error](err); {
	case ok:
		msg = e.Message
	case errors.Is(err, events.ErrSlow):
		msg = "Event stream fell behind and missed events; subscribe again and resync"
	case errors.Is(err, events.ErrInterrupted):
		msg = "Event stream interrupted; subscribe again and resync"
	}
	b, _ := json.Marshal(map[string]string{"message": msg})
	return []byte("id: " + strconv.FormatInt(time.Now().UnixMilli(), 10) + "\nevent: error\ndata: " + string(b) + "\n\n")
}
