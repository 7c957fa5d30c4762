// Package audit records who did what: an append-only log of events, each written
// in the same transaction as the change it describes.
package audit

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Event is one audit log entry.
type Event struct {
	ID            string
	OrgID         string
	ProjectID     string
	ProjectName   string
	ActorType     string // "user", "identity", "platform"
	ActorID       string
	ActorMetadata map[string]any
	Type          string // kebab-case event type, as Infisical names them
	Metadata      map[string]any
	IP            string
	UserAgent     string
	UserAgentType string
	CreatedAt     time.Time
}

// Bounds on what a client's request puts in an event: a User-Agent may be
// as long as the server's header limit (64 KiB), and an organization's audit
// page of 1,000 events carried them whole (~62 MB a page).
const (
	MaxUserAgentBytes = 512
	MaxIPBytes        = 64
)

// Clip returns s cut to at most n bytes at a character boundary, as valid
// UTF-8 (PostgreSQL refuses a row with invalid UTF-8).
func Clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > n {
		i := n
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	return s
}

// New builds an event of type typ performed by actor in actor's organization.
// The store assigns ID and CreatedAt.
func New(actor authz.Actor, typ string, metadata map[string]any) Event {
	if metadata == nil {
		metadata = map[string]any{}
	}
	ua := Clip(actor.UserAgent, MaxUserAgentBytes)
	ev := Event{
		OrgID:         actor.OrgID,
		ActorType:     string(actor.Kind),
		ActorID:       actor.ID,
		Type:          typ,
		Metadata:      metadata,
		IP:            Clip(actor.IP, MaxIPBytes),
		UserAgent:     ua,
		UserAgentType: UserAgentType(ua),
	}
	switch actor.Kind {
	case authz.ActorIdentity:
		ev.ActorMetadata = map[string]any{"identityId": actor.ID, "name": actor.Name}
	case authz.ActorUser:
		ev.ActorMetadata = map[string]any{"userId": actor.ID, "email": actor.Name, "username": actor.Name}
	case authz.ActorServiceToken:
		ev.ActorMetadata = map[string]any{"serviceId": actor.ID, "name": actor.Name}
	default:
		ev.ActorType = "platform"
		ev.ActorMetadata = map[string]any{}
	}
	return ev
}

// InProject returns ev scoped to a project.
func (ev Event) InProject(id, name string) Event {
	ev.ProjectID, ev.ProjectName = id, name
	return ev
}

// UserAgentType classifies a User-Agent the way Infisical does.
func UserAgentType(ua string) string {
	l := strings.ToLower(ua)
	switch {
	case strings.Contains(l, "infisicalpythonsdk"):
		return "InfisicalPythonSDK"
	case strings.Contains(l, "infisicalnodesdk"):
		return "InfisicalNodeSDK"
	case strings.Contains(l, "k8-operator") || strings.Contains(l, "k8-operatorv"):
		return "k8-operator"
	case strings.Contains(l, "terraform"):
		return "terraform"
	case strings.Contains(l, "cli"):
		return "cli"
	case strings.Contains(l, "mozilla"):
		return "web"
	}
	return "other"
}

// Filter selects events for a listing. Zero fields do not filter.
type Filter struct {
	OrgID      string
	ProjectID  string
	EventTypes []string
	ActorType  string
	ActorID    string
	Start, End time.Time
	Offset     int
	Limit      int
}

// Store reads the log. Events are written by the stores of the changes they describe.
type Store interface {
	AuditEvents(ctx context.Context, f Filter) ([]Event, error)
	// AppendAudit records an event that goes with no change; it returns once the event is committed.
	AppendAudit(ctx context.Context, ev Event) error
}

// Authorizer checks organization-level permissions.
type Authorizer interface {
	OrgPermissions(ctx context.Context, actor authz.Actor) (authz.Set, error)
}

// Service answers audit log queries.
type Service struct {
	store Store
	authz Authorizer
	now   func() time.Time
}

// NewService returns an audit service.
func NewService(st Store, az Authorizer, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, authz: az, now: now}
}

// MaxReasonBytes bounds the refusal message an event of a refused request
// keeps: some quote what the request named (an organization id of a 1 MiB
// body), and every refused request writes one.
const MaxReasonBytes = 2 << 10

// Denied records that actor was refused action on a route: what it tried,
// never its body. Reads and writes alike are recorded.
func (s *Service) Denied(ctx context.Context, actor authz.Actor, method, route, reason string) error {
	ev := New(actor, "permission-denied", map[string]any{"method": method, "route": route, "reason": Clip(reason, MaxReasonBytes)})
	return s.store.AppendAudit(context.WithoutCancel(ctx), ev)
}

// MaxRange is the longest time range one query may cover.
const MaxRange = 92 * 24 * time.Hour

// MaxOffset bounds how far into a query's rows a page may start: the
// database walks every row before it (an offset of 2^30 over two million
// events took 1.2 s of one of the node's connections).
const MaxOffset = 100_000

// MaxEventTypes bounds the distinct event types one query filters on (each
// is a parameter of the query: SQLite takes at most 32,766, PostgreSQL 65,535).
const MaxEventTypes = 100

// List returns the actor's organization's events matching f, newest first.
// Defaults follow Infisical: from last midnight (UTC) until now, 20 events.
func (s *Service) List(ctx context.Context, actor authz.Actor, f Filter) ([]Event, error) {
	perms, err := s.authz.OrgPermissions(ctx, actor)
	if err != nil {
		return nil, err
	}
	if err := perms.Check(authz.ActRead, authz.SubAuditLogs, nil); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	if f.End.IsZero() {
		f.End = now
	}
	if f.Start.IsZero() {
		y, m, d := now.Date()
		f.Start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		if f.Start.After(f.End) {
			f.Start = f.End.Add(-24 * time.Hour)
		}
	}
	if f.End.Before(f.Start) {
		return nil, errs.Invalidf("endDate must be on or after startDate")
	}
	if f.End.Sub(f.Start) > MaxRange {
		return nil, errs.Invalidf("The date range cannot exceed 3 months")
	}
	if f.Limit == 0 {
		f.Limit = 20
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return nil, errs.Invalidf("limit must be between 1 and 1000")
	}
	if f.Offset < 0 || f.Offset > MaxOffset {
		return nil, errs.Invalidf("offset must be between 0 and %d: narrow the date range or filters to go further", MaxOffset)
	}
	slices.Sort(f.EventTypes)
	if f.EventTypes = slices.Compact(f.EventTypes); len(f.EventTypes) > MaxEventTypes {
		return nil, errs.Invalidf("eventType may name at most %d event types", MaxEventTypes)
	}
	f.OrgID = actor.OrgID
	return s.store.AuditEvents(ctx, f)
}
