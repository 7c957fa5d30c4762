package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/secret"
)

// errCrash marks a run stopped by Hook.
var errCrash = errors.New("rotation stopped by test hook")

func isCrash(err error) bool { return errors.Is(err, errCrash) }

func (s *Service) hook(step string) error {
	if s.Hook == nil {
		return nil
	}
	if err := s.Hook(step); err != nil {
		return fmt.Errorf("%w: %v", errCrash, err)
	}
	return nil
}

// backoff is the wait before retry n of a failed run.
func backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 10 {
		return time.Hour
	}
	return min(30*time.Second<<(n-1), time.Hour)
}

// run performs one claimed run: record the new password, set it on the
// inactive principal, prove it, write the secrets, flip the active one. A
// failure before the flip is recorded with a retry time; the pending
// password stays, so the retry sets the same one.
func (s *Service) run(ctx context.Context, actor authz.Actor, st State, manual bool) error {
	r := st.Rotation
	err := s.steps(ctx, &st)
	if isCrash(err) {
		return err
	}
	now := s.now().UTC()
	o := Outcome{At: now, Manual: manual}
	var ev = s.event(actor, "rotate-secret-rotation", r, map[string]any{"manual": manual})
	if err == nil {
		creds := st.Credentials // set by steps: the new sealed pair
		o.OK, o.ActiveIndex, o.Credentials = true, st.PendingIndex, creds
		if r.AutoRotate {
			next := nextAt(now, r.IntervalDays, r.RotateAtHours, r.RotateAtMinutes)
			o.NextRotationAt, o.DueAt = &next, &next
		}
		ev.Metadata["outcome"] = "success"
	} else {
		msg := err.Error()
		if e, ok := errors.AsType[*errs.Error](err); ok && e.Kind == errs.Internal {
			s.log.Error("secret rotation", "rotation", r.ID, "err", msg)
			msg = "internal error"
		}
		o.Message = truncate(msg, 500)
		retry := now.Add(backoff(r.Attempts + 1))
		o.DueAt = &retry
		if r.AutoRotate && r.NextRotationAt != nil {
			o.NextRotationAt = r.NextRotationAt
		}
		ev.Metadata["outcome"], ev.Metadata["reason"] = "failed", o.Message
		s.log.Warn("secret rotation failed", "rotation", r.ID, "attempt", r.Attempts+1, "err", o.Message)
	}
	if ferr := s.store.FinishRotation(context.WithoutCancel(ctx), r.ID, st.Claim, o, ev); ferr != nil {
		if err == nil {
			return ferr
		}
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// steps does the work of a run; on success st.Credentials holds the new
// sealed pair and st.PendingIndex the principal now active.
func (s *Service) steps(ctx context.Context, st *State) error {
	r := st.Rotation
	creds, err := s.openCreds(ctx, *st)
	if err != nil {
		return err
	}
	var password string
	if st.Pending != nil {
		b, err := s.keys.Open(ctx, keyring.Project(r.ProjectID), st.Pending, AD(r.ID, "pending_password"))
		if err != nil {
			return errs.Internalf(err, "open pending password")
		}
		password = string(b)
	} else {
		password = r.Parameters.Requirements().Generate()
		st.PendingIndex = 1 - r.ActiveIndex
		sealed, err := s.keys.Seal(ctx, keyring.Project(r.ProjectID), []byte(password), AD(r.ID, "pending_password"))
		if err != nil {
			return errs.Internalf(err, "seal pending password")
		}
		if err := s.store.SetRotationPending(ctx, r.ID, st.Claim, sealed, st.PendingIndex); err != nil {
			return err
		}
		st.Pending = sealed
	}
	if err := s.hook("pending"); err != nil {
		return err
	}
	idx := st.PendingIndex
	user := principals(r)[idx]
	tctx, cancel := context.WithTimeout(ctx, 2*appconn.DialTimeout)
	defer cancel()
	conn, admin, err := s.conns.Open(tctx, r.ConnectionID)
	if err != nil {
		return err
	}
	if err := safePassword(password); err != nil {
		return err
	}
	if r.Type == "redis-credentials" {
		// A scope saved before the rules were what they are is not applied.
		if err := checkScope(r.Parameters.PermissionScope); err != nil {
			return fmt.Errorf("the rotation's permission scope is refused (%v): create the rotation again with a narrower one", err)
		}
	}
	if err := s.target.SetPassword(tctx, conn.App, admin, r.Parameters.PermissionScope, user, password); err != nil {
		return errors.New(appconn.Redact(err.Error(), password, admin.Password))
	}
	if err := s.hook("target"); err != nil {
		return err
	}
	if err := s.target.CheckLogin(tctx, conn.App, admin, user, password); err != nil {
		return errors.New("the new password does not log in: " + appconn.Redact(err.Error(), password, admin.Password))
	}
	first := r.Mapping.Username
	if r.Type == "ldap-password" {
		first = r.Mapping.DN
	}
	items := []secret.BatchItem{
		{Key: first, Change: secret.Change{Value: &user}},
		{Key: r.Mapping.Password, Change: secret.Change{Value: &password}},
	}
	if _, err := s.secrets.UpdateMany(ctx, platform(r), secret.Scope{ProjectID: r.ProjectID, Env: r.Environment, Path: r.SecretPath}, secret.Upsert, items); err != nil {
		if e, ok := err.(*errs.Error); ok && e.Kind != errs.Internal {
			return fmt.Errorf("write secrets: %s", e.Message)
		}
		return err
	}
	if err := s.hook("secrets"); err != nil {
		return err
	}
	creds[idx] = Credential{Username: user, Password: password}
	b, _ := json.Marshal(creds)
	sealed, err := s.keys.Seal(ctx, keyring.Project(r.ProjectID), b, AD(r.ID, "credentials"))
	if err != nil {
		return errs.Internalf(err, "seal credentials")
	}
	st.Credentials = sealed
	return nil
}
