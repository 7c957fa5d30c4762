package dynamic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// DefaultCreatingTimeout is how long a lease may stay in state creating
// before the worker assumes its creator died and revokes whatever it made.
const DefaultCreatingTimeout = 2 * time.Minute

// ProviderTimeout bounds one call to a target.
const ProviderTimeout = 20 * time.Second

// claimLength is how long a claim on a lease or a cleanup keeps it from
// other nodes: one provider call and time to record its outcome.
const claimLength = ProviderTimeout + 10*time.Second

func dataAD(id string) string { return keyring.AD("dynamic_leases", "data", id) }

func leaseEvent(actor authz.Actor, typ string, sec Secret, l Lease) audit.Event {
	return audit.New(actor, typ, map[string]any{"dynamicSecretId": sec.ID, "dynamicSecretName": sec.Name, "leaseId": l.ID,
		"leaseExternalEntityId": l.Username, "environment": sec.Env, "secretPath": sec.Path}).InProject(sec.ProjectID, "")
}

func (s *Service) provider(sec Secret) (provider.Provider, error) {
	reg, ok := provider.Lookup(sec.Type)
	if !ok {
		return nil, errs.BadRequest("Unknown provider type %q", sec.Type)
	}
	p, err := reg.New(sec.Inputs)
	if err != nil {
		return nil, errs.BadRequest("%s", err.Error())
	}
	return p, nil
}

// wakeWorker nudges this node's worker to re-read the next due time.
func (s *Service) wakeWorker() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// MaxLeaseConfig bounds a lease's config (provider options such as a
// Kubernetes namespace), which is stored with the lease and read back by
// every listing of its leases: up to DefaultMaxLeases of them, so 10 MiB
// at most. At 16 KiB, 1,000 leases whose configs were arrays of empty
// objects made one listing hold 471 MiB.
const MaxLeaseConfig = 1 << 10

// DefaultMaxLeases is how many leases of one dynamic secret may be live
// (not yet revoked: creating, active, or whose revocation is under way or
// failed) at once, as Infisical's MAX_LEASE_LIMIT (default 10000). Each is a
// principal in the target, and deleting the dynamic secret revokes them all.
const DefaultMaxLeases = 10000

// ErrLeaseLimit is the store's refusal of a lease over the limit.
var ErrLeaseLimit = errors.New("lease limit reached")

// ErrLeasesLeft is the store's refusal to delete a dynamic secret that has
// a live lease or a pending cleanup.
var ErrLeasesLeft = errors.New("dynamic secret has live leases")

// CreateLease issues a credential. The lease row is committed in state
// creating before the provider is called, so a crash at any point leaves a
// row the worker will revoke; it becomes active once the credential exists.
func (s *Service) CreateLease(ctx context.Context, actor authz.Actor, sc Scope, name, ttl string, config json.RawMessage) (Lease, Secret, error) {
	if len(config) > MaxLeaseConfig {
		return Lease{}, Secret{}, invalidField("config", "config must be at most %d bytes", MaxLeaseConfig)
	}
	if c := bytes.TrimSpace(config); len(c) > 0 && c[0] != '{' && string(c) != "null" {
		return Lease{}, Secret{}, invalidField("config", "config must be an object")
	}
	sec, perms, err := s.byName(ctx, actor, sc, name, authz.ActLease)
	if err != nil {
		return Lease{}, Secret{}, err
	}
	if ttl == "" {
		ttl = sec.DefaultTTL
	}
	d, err := ParseTTL(ttl)
	if err != nil {
		return Lease{}, Secret{}, err
	}
	if sec.MaxTTL != "" {
		if m, err := ParseTTL(sec.MaxTTL); err == nil && d > m {
			return Lease{}, Secret{}, errs.BadRequest("TTL cannot be larger than max TTL")
		}
	}
	if err := withinAccess(perms, sec, s.now().Add(d)); err != nil {
		return Lease{}, Secret{}, err
	}
	p, err := s.provider(sec)
	if err != nil {
		return Lease{}, Secret{}, err
	}
	if err := s.targets.Check(ctx, p); err != nil {
		if pe, ok := errors.AsType[*policyError](err); ok {
			return Lease{}, Secret{}, errs.BadRequest("%s", pe.Error())
		}
		return Lease{}, Secret{}, errs.BadRequest("Failed to create lease: the target's name could not be resolved")
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	l := Lease{ID: uuid.Must(uuid.NewV7()).String(), DynamicSecretID: sec.ID, ProjectID: sec.ProjectID,
		Username: username(sec.UsernameTemplate, actor.Name, now), Config: config, Status: Creating,
		ExpireAt: now.Add(d), DueAt: now.Add(s.CreatingTimeout), CreatedAt: now, UpdatedAt: now}
	if len(l.Config) == 0 || string(l.Config) == "null" {
		l.Config = json.RawMessage("{}")
	}
	if err := s.store.InsertLease(ctx, SealedLease{Lease: l, SecretStamp: sec.UpdatedAt}, s.MaxLeases, leaseEvent(actor, "create-dynamic-secret-lease", sec, l)); err != nil {
		if errors.Is(err, project.ErrStale) {
			// Changed since it was read: the lease would go to inputs that
			// may no longer be the secret's, out of reach of its revocation.
			return Lease{}, Secret{}, errs.Conflictf("The dynamic secret changed while the lease was being created; try again")
		}
		if errors.Is(err, ErrLeaseLimit) {
			return Lease{}, Secret{}, errs.BadRequest("Max lease limit reached. Limit: %d", s.MaxLeases)
		}
		if errs.Is(err, errs.NotFound) { // deleted since it was read
			return Lease{}, Secret{}, errs.NotFoundf("Dynamic secret with name '%s' in folder with path '%s' not found", truncate(name, 64), sec.Path)
		}
		return Lease{}, Secret{}, err
	}
	s.wakeWorker()
	pctx, cancel := context.WithTimeout(s.dialCtx(ctx, p), ProviderTimeout)
	defer cancel()
	password := random(alnum, 48)
	res, err := p.Create(pctx, provider.CreateRequest{Username: l.Username, Password: password, Expiration: l.ExpireAt})
	if err != nil {
		// A target may quote the failing statement back (MySQL's "near '…'",
		// Redis's "Error in ACL SETUSER modifier '…'"): the generated password
		// never goes further than this.
		msg := scrub(s.shown(ctx, "create lease", err, password), password)
		if errors.Is(err, provider.ErrExists) {
			// Not ours: nothing was created, and nothing may be revoked.
			s.store.FinishRevoke(context.WithoutCancel(ctx), l.ID, true, "not created: "+truncate(msg, 200), now)
			return Lease{}, Secret{}, errs.Conflictf("Failed to create lease: %s", truncate(msg, 400))
		}
		// Revoke whatever part of the credential may exist, now, through the worker.
		s.store.FinishRevoke(context.WithoutCancel(ctx), l.ID, false, "creation failed: "+truncate(msg, 200), now)
		s.wakeWorker()
		return Lease{}, Secret{}, errs.BadRequest("Failed to create lease: %s", truncate(msg, 400))
	}
	data, _ := json.Marshal(res.Data)
	sealed, err := s.keys.Seal(ctx, keyring.Project(sec.ProjectID), data, dataAD(l.ID))
	if err != nil {
		return Lease{}, Secret{}, err
	}
	ok, err := s.store.ActivateLease(context.WithoutCancel(ctx), l.ID, sealed, l.ExpireAt)
	if err != nil {
		return Lease{}, Secret{}, err
	}
	if !ok {
		// The worker already treated this lease as abandoned and may have run
		// its revocation before the credential existed: remove it again now.
		if rerr := s.revokeWith(context.WithoutCancel(ctx), sec, l); rerr != nil {
			s.store.FinishRevoke(context.WithoutCancel(ctx), l.ID, false, "abandoned during creation: "+truncate(s.shown(ctx, "revoke lease", rerr), 200), now)
			s.wakeWorker()
		}
		return Lease{}, Secret{}, errs.Unavailablef("Lease creation took longer than the creating timeout and was abandoned; try again")
	}
	s.wakeWorker()
	l.Status, l.Data, l.DueAt = Active, res.Data, l.ExpireAt
	return l, sec, nil
}

// passwordPiece is a run long enough to be a piece of a generated password.
var passwordPiece = lazyre.New(`[A-Za-z0-9]{6,}`)

// scrub masks every run of msg that is part of password: targets quote
// statements back whole or cut short (MariaDB stops after 80 characters).
func scrub(msg, password string) string {
	return passwordPiece().ReplaceAllStringFunc(msg, func(run string) string {
		if strings.Contains(password, run) {
			return "******"
		}
		return run
	})
}

// unreachableText is what a member is shown of a failure to reach or log
// in to a target (provider.ErrUnreachable): the detail would tell them what
// answers where on the network, so it goes to the server log only.
const unreachableText = "the target could not be reached or did not accept the configured credentials (the detail is in the server log)"

// policyText is what a member is shown of a connection the target policy
// refused when dialled: not the address the name resolved to.
const policyText = "the address dialled " + policyRefusal

// shown is what a member may learn of a provider's failure: the target's own
// answer to a statement, or a fixed text (logged with its detail, op naming
// what failed, password masked as the caller's scrub does).
func (s *Service) shown(ctx context.Context, op string, err error, password ...string) string {
	if err == nil {
		return ""
	}
	detail, text := err.Error(), unreachableText
	switch {
	case strings.Contains(detail, policyRefusal):
		text = policyText
	case !errors.Is(err, provider.ErrUnreachable):
		return detail // the target's own answer
	}
	for _, p := range password {
		detail = scrub(detail, p)
	}
	s.logger().WarnContext(ctx, "dynamic secret target unreachable", "op", op, "error", truncate(detail, 400))
	return text
}

func leaseNotFound(id string) error {
	return errs.NotFoundf("Dynamic secret lease with ID '%s' not found", truncate(id, 64))
}

// lease loads a lease of a dynamic secret in the scope's folder.
func (s *Service) lease(ctx context.Context, actor authz.Actor, sc Scope, id string) (Lease, Secret, error) {
	l, sec, _, err := s.leaseWith(ctx, actor, sc, id)
	return l, sec, err
}

// leaseWith is lease, with the actor's permissions in the project.
func (s *Service) leaseWith(ctx context.Context, actor authz.Actor, sc Scope, id string) (Lease, Secret, authz.Set, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Lease{}, Secret{}, authz.Set{}, leaseNotFound(id)
	}
	sl, err := s.store.LeaseByID(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return Lease{}, Secret{}, authz.Set{}, leaseNotFound(id)
	}
	if err != nil {
		return Lease{}, Secret{}, authz.Set{}, err
	}
	f, env, perms, _, err := s.resolve(ctx, actor, sc)
	if err != nil {
		return Lease{}, Secret{}, authz.Set{}, err
	}
	if err := check(perms, authz.ActLease, env, f); err != nil {
		return Lease{}, Secret{}, authz.Set{}, err
	}
	ss, err := s.store.DynamicSecretByID(ctx, sl.DynamicSecretID)
	if err != nil || ss.FolderID != f.ID {
		return Lease{}, Secret{}, authz.Set{}, leaseNotFound(id)
	}
	sec, err := s.open(ctx, ss, env.Slug, f.Path)
	return sl.Lease, sec, perms, err
}

// GetLease returns a lease (without its credentials) and its dynamic secret.
func (s *Service) GetLease(ctx context.Context, actor authz.Actor, sc Scope, id string) (Lease, Secret, error) {
	return s.lease(ctx, actor, sc, id)
}

// Leases lists a dynamic secret's leases that are not revoked.
func (s *Service) Leases(ctx context.Context, actor authz.Actor, sc Scope, name string) ([]Lease, error) {
	sec, _, err := s.byName(ctx, actor, sc, name, authz.ActLease)
	if err != nil {
		return nil, err
	}
	all, err := s.store.Leases(ctx, sec.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Lease, len(all))
	for i, l := range all {
		out[i] = l.Lease
	}
	return out, nil
}

// withinAccess refuses a lease that would end (created or renewed) after
// the temporary access its actor leases by, unless the actor may lease
// there for good: the credential lives on in the target whether or not the
// actor's access does (an hour's access minted a database login for days),
// as a service token's creator is held to (PermissionBoundaryError).
func withinAccess(perms authz.Set, sec Secret, end time.Time) error {
	until, temporary := perms.Temporary()
	if !temporary || !end.After(until) {
		return nil
	}
	if perms.Lasting().Can(authz.ActLease, authz.SubDynamicSecrets, &authz.Fields{Environment: sec.Env, SecretPath: sec.Path}) {
		return nil
	}
	return errs.Forbiddenf("The lease would outlast the temporary access you hold it by (it ends at %s); choose a shorter TTL",
		until.UTC().Format(time.RFC3339)).WithCode("PermissionBoundaryError")
}

// RenewLease extends an active lease as Infisical does: the new expiry is the
// current one plus ttl (the default TTL when empty), refused when it would
// pass the lease's creation plus the max TTL. It tells the target too.
func (s *Service) RenewLease(ctx context.Context, actor authz.Actor, sc Scope, id, ttl string) (Lease, error) {
	l, sec, perms, err := s.leaseWith(ctx, actor, sc, id)
	if err != nil {
		return Lease{}, err
	}
	if l.Status != Active {
		return Lease{}, errs.BadRequest("Lease %s is %s and cannot be renewed", l.ID, l.Status)
	}
	if ttl == "" {
		ttl = sec.DefaultTTL
	}
	d, err := ParseTTL(ttl)
	if err != nil {
		return Lease{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if !l.ExpireAt.After(now) {
		// Due for revocation: the worker may be revoking it already.
		return Lease{}, errs.BadRequest("Lease %s has expired and cannot be renewed", l.ID)
	}
	exp := l.ExpireAt.Add(d)
	if sec.MaxTTL != "" {
		if m, err := ParseTTL(sec.MaxTTL); err == nil && exp.After(l.CreatedAt.Add(m)) {
			return Lease{}, errs.BadRequest("The requested renewal would exceed the maximum allowed lease duration. Please choose a shorter TTL")
		}
	}
	if err := withinAccess(perms, sec, exp); err != nil {
		return Lease{}, err
	}
	p, err := s.provider(sec)
	if err != nil {
		return Lease{}, err
	}
	if r, ok := p.(provider.Renewer); ok {
		pctx, cancel := context.WithTimeout(s.dialCtx(ctx, p), ProviderTimeout)
		defer cancel()
		if err := r.Renew(pctx, provider.RenewRequest{Username: l.Username, Expiration: exp}); err != nil {
			return Lease{}, errs.BadRequest("Failed to renew lease: %s", truncate(s.shown(ctx, "renew lease", err), 400))
		}
	}
	if err := s.store.RenewLease(ctx, l.ID, l.ExpireAt, exp, leaseEvent(actor, "renew-dynamic-secret-lease", sec, l)); err != nil {
		if errs.Is(err, errs.NotFound) {
			return Lease{}, errs.Conflictf("Lease %s was renewed or revoked meanwhile; try again", l.ID)
		}
		return Lease{}, err
	}
	s.wakeWorker()
	l.ExpireAt, l.DueAt, l.UpdatedAt = exp, exp, now
	return l, nil
}

// RevokeLease revokes a lease now. A failed revocation leaves the lease in
// revoke_failed (retried by the worker) unless forced, which records it as
// revoked anyway. A lease already revoked is not found, as in Infisical,
// which deletes the row on revocation.
func (s *Service) RevokeLease(ctx context.Context, actor authz.Actor, sc Scope, id string, forced bool) (Lease, error) {
	l, sec, err := s.lease(ctx, actor, sc, id)
	if err != nil {
		return Lease{}, err
	}
	if l.Status == Revoked {
		return Lease{}, leaseNotFound(id)
	}
	got, err := s.revokeNow(ctx, sec, l, forced, false)
	if err != nil {
		return Lease{}, err
	}
	return got, s.store.AppendAudit(ctx, leaseEvent(actor, "delete-dynamic-secret-lease", sec, got))
}

// revokeNow claims a live lease, revokes it through the provider and
// records the outcome, with the lease's revocation event when audited (a
// deletion of its dynamic secret; a revocation by request records its own).
func (s *Service) revokeNow(ctx context.Context, sec Secret, l Lease, forced, audited bool) (Lease, error) {
	now := s.now().UTC()
	ok, err := s.store.ClaimLease(ctx, l.ID, now.Add(claimLength))
	if err != nil {
		return Lease{}, err
	}
	if !ok {
		cur, err := s.store.LeaseByID(ctx, l.ID)
		return cur.Lease, err
	}
	return s.revokeClaimed(ctx, sec, l, forced, audited)
}

// revokeClaimed is revokeNow once the lease is claimed.
func (s *Service) revokeClaimed(ctx context.Context, sec Secret, l Lease, forced, audited bool) (Lease, error) {
	now := s.now().UTC()
	rerr := s.revokeWith(ctx, sec, l)
	details := ""
	if rerr != nil {
		details = truncate(s.shown(ctx, "revoke lease", rerr), 250)
		if forced {
			details = "forced: " + details
		}
	}
	// Forced records a failed revocation as done, but not one that failed
	// because the request went away: nothing was tried then.
	success := rerr == nil || forced && ctx.Err() == nil
	if errors.Is(rerr, provider.ErrNotOwned) {
		details, success = "not revoked: "+truncate(s.shown(ctx, "revoke lease", rerr), 250), true
	}
	var evs []audit.Event
	if audited {
		failed := ""
		if rerr != nil && !errors.Is(rerr, provider.ErrNotOwned) {
			failed = details
		}
		evs = append(evs, revokeEvent(sec, l, failed))
	}
	var recorded bool
	var err error
	if forced && rerr != nil && success && !errors.Is(rerr, provider.ErrNotOwned) {
		// Forced past a target that refused the revocation: the lease is
		// revoked as asked, but its user stays a cleanup the worker retries
		// until it is gone (a provider that disables, PostgreSQL's, has
		// disabled it before the drop that failed). A lessee who kept a
		// temporary table open made DROP ROLE fail, forced its own
		// revocation and kept a live role no lease accounted for.
		recorded, err = s.store.ForceRevoked(context.WithoutCancel(ctx), l.ID, details, now.Add(backoff(1)), evs...)
	} else {
		recorded, err = s.store.FinishRevoke(context.WithoutCancel(ctx), l.ID, success, details, now.Add(backoff(l.Attempts+1)), evs...)
	}
	if err != nil {
		return Lease{}, err
	}
	if s.metrics != nil && recorded {
		s.metrics.Revoked(rerr == nil, 0)
	}
	cur, err := s.store.LeaseByID(ctx, l.ID)
	return cur.Lease, err
}

func (s *Service) revokeWith(ctx context.Context, sec Secret, l Lease) error {
	p, err := s.provider(sec)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(s.dialCtx(ctx, p), ProviderTimeout)
	defer cancel()
	err = p.Revoke(pctx, provider.RevokeRequest{Username: l.Username})
	if err != nil && pctx.Err() != nil && ctx.Err() == nil {
		// The target held the call for the whole timeout (down, a tarpit,
		// a statement that sleeps): as unreachable as a refused connection
		// for the leases after this one.
		err = provider.Unreachable(err)
	}
	return err
}

// dropBatch is how many disabled users one call to the target drops.
const dropBatch = 200

// dropUsers removes users of a dynamic secret that were disabled (the second
// phase of a revocation), dropBatch at a time. Users already gone are skipped.
// It returns the users it could not drop (nil when it dropped them all) and
// the last error. A batch the target refuses, though it answered, is tried
// again one user at a time, so that one user that cannot be dropped (a
// lessee can make objects depend on its role) holds back no other.
func (s *Service) dropUsers(ctx context.Context, dsID string, names []string) ([]string, error) {
	ss, err := s.store.DynamicSecretByID(ctx, dsID)
	if err != nil {
		return names, err
	}
	sec, err := s.open(ctx, ss, "", "")
	if err != nil {
		return names, err
	}
	p, err := s.provider(sec)
	if err != nil {
		return names, err
	}
	drop := func(users []string) error {
		pctx, cancel := context.WithTimeout(s.dialCtx(ctx, p), ProviderTimeout)
		defer cancel()
		if br, ok := p.(provider.BatchRevoker); ok {
			return br.RevokeMany(pctx, users)
		}
		for _, u := range users {
			if err := p.Revoke(pctx, provider.RevokeRequest{Username: u}); err != nil {
				return err
			}
		}
		return nil
	}
	var failed []string
	var last error
	for i, chunk := 0, []string(nil); i < len(names); i += len(chunk) {
		chunk = names[i:min(i+dropBatch, len(names))]
		err := drop(chunk)
		if err == nil {
			continue
		}
		last = err
		if len(chunk) == 1 || errors.Is(err, provider.ErrUnreachable) || ctx.Err() != nil {
			return append(failed, names[i:]...), err
		}
		for _, u := range chunk {
			if err := drop([]string{u}); err != nil {
				failed, last = append(failed, u), err
				if errors.Is(err, provider.ErrUnreachable) || ctx.Err() != nil {
					return append(failed, names[i+slices.Index(chunk, u)+1:]...), err
				}
			}
		}
	}
	if len(failed) == 0 {
		return nil, nil // the batch failed, but one at a time every user went
	}
	return failed, last
}

// splitDropped splits the lease ids of cleanups (ids[i] the lease of
// names[i]) into those whose users were dropped and those in failed, as
// dropUsers reports them.
func splitDropped(ids, names, failed []string) (dropped, kept []string) {
	notDropped := make(map[string]bool, len(failed))
	for _, u := range failed {
		notDropped[u] = true
	}
	for i, id := range ids {
		if notDropped[names[i]] {
			kept = append(kept, id)
		} else {
			dropped = append(dropped, id)
		}
	}
	return dropped, kept
}

// backoff is the wait before retry n: 1s, 2s, 4s ... capped at 5 minutes.
func backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 9 {
		return 5 * time.Minute
	}
	d := time.Second << (n - 1)
	return min(d, 5*time.Minute)
}

// LeaseData decrypts a lease's credentials (only at creation are they returned).
func (s *Service) LeaseData(ctx context.Context, sl SealedLease) (map[string]any, error) {
	if len(sl.SealedData) == 0 {
		return nil, nil
	}
	b, err := s.keys.Open(ctx, keyring.Project(sl.ProjectID), sl.SealedData, dataAD(sl.ID))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}
