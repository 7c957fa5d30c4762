package pki

import (
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/poll"
)

// Alert mails its recipients the certificates of a collection that expire
// within AlertBeforeDays, at most once a day.
type Alert struct {
	ID              string
	OrgID           string // read with the alert, for its audit events
	ProjectID       string
	CollectionID    string
	Name            string
	AlertBeforeDays int
	Emails          []string
	// DueAt is when the alert worker next looks at the alert.
	DueAt      time.Time
	LastSentAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Bounds on alerts, Infisical's where it has them.
const (
	MaxAlertEmails     = 5
	MaxAlertBeforeDays = 3650
	MaxAlerts          = 500
	// AlertInterval is how often an alert is looked at, and so the least
	// time between two of its mails.
	AlertInterval = 24 * time.Hour
	// AlertRetry is how soon an alert whose mail reached no recipient is
	// tried again.
	AlertRetry = time.Hour
	// maxAlertLines bounds the certificates one mail lists.
	maxAlertLines = 500
)

// Mailer sends one plain-text message to one recipient.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

func alertNotFound(id string) error { return errs.NotFoundf("PKI alert with ID '%s' not found", id) }

func alertEvent(actor authz.Actor, typ string, a Alert) audit.Event {
	return audit.New(actor, typ, map[string]any{"pkiAlertId": a.ID, "pkiCollectionId": a.CollectionID, "name": a.Name,
		"alertBefore": fmt.Sprint(a.AlertBeforeDays), "eventType": "expiration", "recipientEmails": strings.Join(a.Emails, ",")}).
		InProject(a.ProjectID, "")
}

func (s *Service) alert(ctx context.Context, actor authz.Actor, id, action string) (Alert, error) {
	id = strings.TrimSpace(id)
	if _, err := uuid.Parse(id); err != nil {
		return Alert{}, alertNotFound(id)
	}
	a, err := s.store.Alert(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return Alert{}, alertNotFound(id)
	}
	if err != nil {
		return Alert{}, err
	}
	return a, s.check(ctx, actor, a.ProjectID, action, authz.SubPkiAlerts, func() error { return alertNotFound(id) }, true)
}

// AlertInput is what CreateAlert and UpdateAlert take; on update, nil
// fields stay as they are.
type AlertInput struct {
	ProjectID       string // create only
	CollectionID    *string
	Name            *string
	AlertBeforeDays *int
	Emails          []string // nil: unchanged
}

func (in AlertInput) apply(a *Alert) error {
	if in.Name != nil {
		a.Name = strings.TrimSpace(*in.Name)
	}
	if a.Name == "" || len(a.Name) > 255 {
		return errs.Fieldf("name", "name must be 1 to 255 characters")
	}
	if in.AlertBeforeDays != nil {
		a.AlertBeforeDays = *in.AlertBeforeDays
	}
	if a.AlertBeforeDays < 1 || a.AlertBeforeDays > MaxAlertBeforeDays {
		return errs.Fieldf("alertBeforeDays", "alertBeforeDays must be 1 to %d", MaxAlertBeforeDays)
	}
	if in.Emails != nil {
		if len(in.Emails) < 1 {
			return errs.Fieldf("emails", "You must specify at least 1 email")
		}
		if len(in.Emails) > MaxAlertEmails {
			return errs.Fieldf("emails", "You can specify a maximum of %d emails", MaxAlertEmails)
		}
		out := make([]string, 0, len(in.Emails))
		for _, e := range in.Emails {
			e = strings.TrimSpace(e)
			addr, err := mail.ParseAddress(e)
			if err != nil || addr.Address != e || addr.Name != "" || strings.ContainsAny(e, ",\r\n") || len(e) > 254 {
				return errs.Fieldf("emails", "Invalid email address")
			}
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
		a.Emails = out
	}
	if len(a.Emails) == 0 {
		return errs.Fieldf("emails", "You must specify at least 1 email")
	}
	return nil
}

// collectionFor reads the collection an alert names: of the alert's
// project, and readable by the actor.
func (s *Service) collectionFor(ctx context.Context, actor authz.Actor, projectID, id string) error {
	c, err := s.collection(ctx, actor, id, authz.ActRead)
	if err != nil {
		return err
	}
	if c.ProjectID != projectID {
		return collectionNotFound(id)
	}
	return nil
}

// CreateAlert makes an alert on a collection of the project. It is looked
// at first at once.
func (s *Service) CreateAlert(ctx context.Context, actor authz.Actor, in AlertInput) (Alert, error) {
	projectID := strings.TrimSpace(in.ProjectID)
	if projectID == "" {
		return Alert{}, errs.Fieldf("projectId", "projectId is required")
	}
	if in.CollectionID == nil || strings.TrimSpace(*in.CollectionID) == "" {
		return Alert{}, errs.Fieldf("pkiCollectionId", "pkiCollectionId is required")
	}
	if in.AlertBeforeDays == nil {
		return Alert{}, errs.Fieldf("alertBeforeDays", "alertBeforeDays is required")
	}
	if in.Emails == nil {
		in.Emails = []string{}
	}
	var a Alert
	if err := in.apply(&a); err != nil {
		return Alert{}, err
	}
	if _, err := uuid.Parse(projectID); err != nil {
		return Alert{}, projectNotFound(projectID)()
	}
	if err := s.check(ctx, actor, projectID, authz.ActCreate, authz.SubPkiAlerts, projectNotFound(projectID), false); err != nil {
		return Alert{}, err
	}
	a.CollectionID = strings.TrimSpace(*in.CollectionID)
	if err := s.collectionFor(ctx, actor, projectID, a.CollectionID); err != nil {
		return Alert{}, err
	}
	if n, err := s.store.CountAlerts(ctx, projectID); err != nil {
		return Alert{}, err
	} else if n >= MaxAlerts {
		return Alert{}, TooManyAlerts(n)
	}
	// First looked at a day on, as Infisical's daily run: due at once, an
	// alert deleted and made again mailed its recipients (any addresses)
	// every time, as fast as a member could loop.
	now := s.clock()
	a.ID, a.ProjectID, a.DueAt, a.CreatedAt, a.UpdatedAt = uuid.NewString(), projectID, now.Add(AlertInterval), now, now
	err := s.store.CreateAlert(ctx, a, alertEvent(actor, "create-pki-alert", a))
	if errs.Is(err, errs.Conflict) {
		return Alert{}, errs.BadRequest("A PKI alert named %q exists in the project already", a.Name)
	}
	return a, err
}

// GetAlert returns an alert.
func (s *Service) GetAlert(ctx context.Context, actor authz.Actor, id string) (Alert, error) {
	return s.alert(ctx, actor, id, authz.ActRead)
}

// ListAlerts returns a project's alerts, oldest first.
func (s *Service) ListAlerts(ctx context.Context, actor authz.Actor, projectID string) ([]Alert, error) {
	if _, err := uuid.Parse(projectID); err != nil {
		return nil, projectNotFound(projectID)()
	}
	if err := s.check(ctx, actor, projectID, authz.ActRead, authz.SubPkiAlerts, projectNotFound(projectID), false); err != nil {
		return nil, err
	}
	return s.store.Alerts(ctx, projectID)
}

// UpdateAlert changes an alert. Its schedule stays: a change does not make
// it mail again the same day.
func (s *Service) UpdateAlert(ctx context.Context, actor authz.Actor, id string, in AlertInput) (Alert, error) {
	a, err := s.alert(ctx, actor, id, authz.ActEdit)
	if err != nil {
		return Alert{}, err
	}
	if err := in.apply(&a); err != nil {
		return Alert{}, err
	}
	if in.CollectionID != nil {
		a.CollectionID = strings.TrimSpace(*in.CollectionID)
		if err := s.collectionFor(ctx, actor, a.ProjectID, a.CollectionID); err != nil {
			return Alert{}, err
		}
	}
	a.UpdatedAt = s.clock()
	err = s.store.UpdateAlert(ctx, a, alertEvent(actor, "update-pki-alert", a))
	if errs.Is(err, errs.Conflict) {
		return Alert{}, errs.BadRequest("A PKI alert named %q exists in the project already", a.Name)
	}
	return a, err
}

// DeleteAlert deletes an alert.
func (s *Service) DeleteAlert(ctx context.Context, actor authz.Actor, id string) (Alert, error) {
	a, err := s.alert(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return Alert{}, err
	}
	return a, s.store.DeleteAlert(ctx, a.ID, alertEvent(actor, "delete-pki-alert", a))
}

// AlertWorker mails due alerts. One runs on every server process; the
// claim in the database (which moves the alert's due time a day on) keeps
// two nodes from mailing one alert, and an idle worker only reads.
type AlertWorker struct {
	svc    *Service
	mailer Mailer
	log    *slog.Logger
	// MaxWait bounds a sleep, so alerts other nodes create are seen.
	MaxWait time.Duration
	// Batch is how many alerts one claim takes.
	Batch int
}

// NewAlertWorker returns the alert worker of svc; a nil mailer sends
// nothing (Run returns at once).
func NewAlertWorker(svc *Service, m Mailer, log *slog.Logger) *AlertWorker {
	if log == nil {
		log = slog.Default()
	}
	return &AlertWorker{svc: svc, mailer: m, log: log, MaxWait: time.Minute, Batch: 16}
}

// Run works until ctx is done.
func (w *AlertWorker) Run(ctx context.Context) error {
	if w.mailer == nil {
		return nil
	}
	poll.Run(ctx, "pki alert worker", w.log, w.svc.clock, w.MaxWait, w.tick)
	return nil
}

// Tick claims the alerts due now (up to Batch) and mails them; it reports
// how many it claimed. With nothing due it only reads.
func (w *AlertWorker) Tick(ctx context.Context) (int, error) {
	n, _, err := w.tick(ctx)
	return n, err
}

func (w *AlertWorker) tick(ctx context.Context) (int, time.Time, error) {
	if w.mailer == nil {
		return 0, time.Time{}, nil
	}
	s := w.svc
	now := s.clock()
	if next, err := s.store.NextAlertDue(ctx); err != nil || next.IsZero() || next.After(now) {
		return 0, next, err
	}
	claimed, err := s.store.ClaimDueAlerts(ctx, now, now.Add(AlertInterval), max(w.Batch, 1))
	if err != nil {
		return 0, time.Time{}, err
	}
	for _, a := range claimed {
		if err := w.send(ctx, a, now); err != nil && ctx.Err() == nil {
			w.log.Error("pki alert", "alertId", a.ID, "err", err.Error())
		}
	}
	return len(claimed), time.Time{}, nil
}

// ExpiringInCollection lists the CAs and active certificates of a
// collection whose notAfter lies in [now, now+days], soonest first.
func (s *Service) expiringInCollection(ctx context.Context, collectionID string, now time.Time, days int) ([]CollectionItem, error) {
	return s.store.ExpiringCollectionItems(ctx, collectionID, now, now.Add(time.Duration(days)*24*time.Hour), maxAlertLines)
}

// send mails an alert's recipients the collection's items that expire
// within its window; none expiring, nothing is sent. When no recipient
// could be reached the alert is tried again after AlertRetry.
func (w *AlertWorker) send(ctx context.Context, a Alert, now time.Time) error {
	s := w.svc
	items, err := s.expiringInCollection(ctx, a.CollectionID, now, a.AlertBeforeDays)
	if err != nil || len(items) == 0 {
		return err
	}
	subject := fmt.Sprintf("lockbox: %d certificate(s) expiring within %d days (alert %s)", len(items), a.AlertBeforeDays, a.Name)
	if strings.ContainsAny(subject, "\r\n") {
		subject = fmt.Sprintf("lockbox: %d certificate(s) expiring within %d days", len(items), a.AlertBeforeDays)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The PKI alert %q (id %s) of project %s watches a collection in which these expire within %d days:\n\n",
		a.Name, a.ID, a.ProjectID, a.AlertBeforeDays)
	for _, it := range items {
		kind := "certificate"
		if it.Type == ItemCA {
			kind = "CA certificate"
		}
		fmt.Fprintf(&b, "- %s %q, serial %s, expires %s (in %d days)\n", kind, it.FriendlyName, it.SerialNumber,
			it.NotAfter.UTC().Format(time.RFC3339), int(it.NotAfter.Sub(now).Hours()/24))
	}
	b.WriteString("\nRenew or replace them before they expire.\n")
	var sent, failed []string
	for _, to := range a.Emails {
		if err := w.mailer.Send(ctx, to, subject, b.String()); err != nil {
			w.log.Warn("pki alert mail", "alertId", a.ID, "err", err.Error())
			failed = append(failed, to)
			continue
		}
		sent = append(sent, to)
	}
	serials := make([]string, len(items))
	for i, it := range items {
		serials[i] = it.SerialNumber
	}
	ev := audit.New(authz.Actor{Kind: authz.ActorPlatform, OrgID: a.OrgID}, "send-pki-alert", map[string]any{"pkiAlertId": a.ID,
		"pkiCollectionId": a.CollectionID, "serialNumbers": serials, "sentTo": sent, "failedTo": failed}).InProject(a.ProjectID, "")
	var retry *time.Time
	if len(sent) == 0 {
		t := now.Add(AlertRetry)
		retry = &t
	}
	return s.store.AlertSent(ctx, a.ID, now, len(sent) > 0, retry, ev)
}
