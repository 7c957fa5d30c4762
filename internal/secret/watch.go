package secret

import (
	"context"
	"hash/maphash"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/events"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Feed carries secret events between writers and subscribers, on every node;
// store.EventFeed implements it.
type Feed interface {
	// Publish announces changes that have committed; it never fails the write.
	Publish(ctx context.Context, evs []events.Event)
	// Subscribe returns a subscription to the events of project that match
	// accepts, until ctx ends.
	Subscribe(ctx context.Context, project string, match func(events.Event) bool) (*events.Subscription, error)
}

// SetFeed makes the service announce every committed create, update and
// delete of a shared secret on f, and lets Watch subscribe to it.
func (s *Service) SetFeed(f Feed) { s.feed = f }

// PermissionRefresh is how often a watch re-reads its actor's permissions
// and re-checks its token, unless SetPermissionRefresh changed it.
const PermissionRefresh = time.Minute

var permissionRefresh atomic.Int64 // a duration; 0: PermissionRefresh

// SetPermissionRefresh changes how often the watches started from now on
// re-read their permissions (for tests); it returns the previous value.
func SetPermissionRefresh(d time.Duration) time.Duration {
	if old := time.Duration(permissionRefresh.Swap(int64(d))); old > 0 {
		return old
	}
	return PermissionRefresh
}

func refreshEvery() time.Duration {
	if d := time.Duration(permissionRefresh.Load()); d > 0 {
		return d
	}
	return PermissionRefresh
}

// WatchRule registers one event type, optionally only in one environment and
// in the folders whose path matches a glob ("*" one segment, "**" any depth).
type WatchRule struct {
	Type events.Type
	Env  string // empty: every environment
	Path string // empty: every folder
}

// Watch subscribes actor to the secret events of a project that its rules
// register, until ctx ends. Each rule must point where the actor may see
// secrets (403 otherwise), and each event is delivered only if the actor may
// see that the secret exists (describe, read or readValue on it); permissions
// are re-read every PermissionRefresh, and a watch whose rules are no longer
// allowed ends with a Forbidden error. So does one whose credential no
// longer holds: valid (when given) is asked first, each time.
func (s *Service) Watch(ctx context.Context, actor authz.Actor, projectID string, rules []WatchRule, valid func(context.Context) error) (*events.Subscription, error) {
	if s.feed == nil {
		return nil, errs.BadRequest("Event subscriptions are not available on this server")
	}
	if projectID == "" {
		return nil, invalidField("projectId", "Missing project id")
	}
	if _, err := uuid.Parse(projectID); err != nil {
		return nil, errs.NotFoundf("Project with ID '%s' not found", projectID)
	}
	if len(rules) == 0 || len(rules) > 10 {
		return nil, invalidField("register", "Register 1 to 10 events")
	}
	for i, r := range rules {
		if !events.Known(r.Type) {
			return nil, invalidField("register", "Unknown event %q", truncate(string(r.Type), 64))
		}
		if len(r.Env) > 64 || strings.ContainsAny(r.Env, "/\x00") {
			return nil, invalidField("environmentSlug", "Invalid environment slug")
		}
		p, err := normalizeGlob(r.Path)
		if err != nil {
			return nil, err
		}
		rules[i].Path = p
	}
	perms, err := s.watchPerms(ctx, actor, projectID, rules)
	if err != nil {
		return nil, err
	}
	var cur atomic.Pointer[authz.Set]
	cur.Store(&perms)
	globs := &globMemo{rules: rules}
	sub, err := s.feed.Subscribe(ctx, projectID, func(ev events.Event) bool {
		return ev.ProjectID == projectID && watchMatch(*cur.Load(), rules, globs.matching(ev.Path), ev)
	})
	if err != nil {
		e := errs.Unavailablef("Event subscriptions are unavailable right now; retry")
		e.Err = err
		return nil, e
	}
	go func() {
		// The stream outlives the request's cache check: read afresh.
		ctx := cache.Unsynced(ctx)
		t := time.NewTicker(refreshEvery())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var p authz.Set
			var err error
			if valid != nil {
				err = valid(ctx)
			}
			if err == nil {
				p, err = s.watchPerms(ctx, actor, projectID, rules)
			}
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				sub.Stop(errs.Forbiddenf("Permission to these events was revoked"))
				return
			}
			cur.Store(&p)
		}
	}()
	return sub, nil
}

// watchPerms resolves the actor's permissions and checks that each rule
// points where some secret may be seen.
func (s *Service) watchPerms(ctx context.Context, actor authz.Actor, projectID string, rules []WatchRule) (authz.Set, error) {
	perms, err := s.authz.ProjectPermissions(ctx, actor, projectID)
	if err != nil {
		return authz.Set{}, err
	}
	for _, r := range rules {
		var f *authz.Fields
		if r.Env != "" {
			f = &authz.Fields{Environment: r.Env, SecretPath: globBase(r.Path)}
		}
		if !perms.Can(authz.ActRead, authz.SubSecrets, f) && !perms.Can(authz.ActReadValue, authz.SubSecrets, f) &&
			!perms.Can(authz.ActDescribeSecret, authz.SubSecrets, f) {
			return authz.Set{}, errs.PermissionDenied(authz.ActDescribeSecret, authz.SubSecrets)
		}
	}
	return perms, nil
}

// watchMatch reports whether ev is one the stream registered for (globs
// holds a bit for each rule whose path matches ev's) and may see.
func watchMatch(perms authz.Set, rules []WatchRule, globs uint16, ev events.Event) bool {
	for i, r := range rules {
		if r.Type != ev.Type || (r.Env != "" && r.Env != ev.Env) || globs&(1<<i) == 0 {
			continue
		}
		f := &authz.Fields{Environment: ev.Env, SecretPath: ev.Path, SecretName: ev.Key, SecretTags: ev.Tags}
		return perms.Can(authz.ActRead, authz.SubSecrets, f) || perms.Can(authz.ActReadValue, authz.SubSecrets, f) ||
			perms.Can(authz.ActDescribeSecret, authz.SubSecrets, f)
	}
	return false
}

// globMemo remembers which of a stream's rules' globs match the folder
// paths it saw lately, so that a write of many secrets to one folder is
// matched once, not once a secret. Paths are kept as a keyed 64-bit hash (a
// path may be 2 KiB: 1,024 of them a stream, 10,000 streams, were 20 GB);
// two paths colliding (odds of about 2^-64 a pair) would give the later the
// earlier's answer: an event of a folder the stream may see anyway (the
// permission check is made for every event), or one missed. Only the
// stream's goroutine uses it.
type globMemo struct {
	rules []WatchRule // at most 10
	seed  maphash.Seed
	seen  map[uint64]uint16
}

// matching has a bit set for each rule whose glob matches p.
func (m *globMemo) matching(p string) uint16 {
	if m.seen == nil {
		m.seed = maphash.MakeSeed()
	}
	h := maphash.String(m.seed, p)
	if b, ok := m.seen[h]; ok {
		return b
	}
	if m.seen == nil || len(m.seen) >= 1024 {
		m.seen = make(map[uint64]uint16)
	}
	var b uint16
	for i, r := range m.rules {
		if r.Path == "" || globMatch(r.Path, p) {
			b |= 1 << i
		}
	}
	m.seen[h] = b
	return b
}

// normalizeGlob cleans a folder path whose segments may be "*", "**" or
// folder names with "*" in them; empty stays empty (every folder).
func normalizeGlob(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") || len(p) > 1024 {
		return "", invalidField("secretPath", "Secret path must start with / and be at most 1024 characters")
	}
	var segs []string
	for _, sg := range strings.Split(p, "/") {
		if sg == "" {
			continue
		}
		if !project.ValidFolderName(strings.ReplaceAll(sg, "*", "x")) {
			return "", invalidField("secretPath", "Secret path segment %q is not a folder name or a glob", truncate(sg, 64))
		}
		segs = append(segs, sg)
	}
	// Paths are at most 32 folders deep; each event is matched segment by
	// segment against every glob, so longer ones only cost.
	if len(segs) > 32 {
		return "", invalidField("secretPath", "Secret path glob is deeper than 32 folders")
	}
	return "/" + strings.Join(segs, "/"), nil
}

// globBase is the part of a glob before its first wildcard segment.
func globBase(p string) string {
	if p == "" {
		return "/"
	}
	var segs []string
	for _, sg := range strings.Split(p[1:], "/") {
		if strings.Contains(sg, "*") {
			break
		}
		if sg != "" {
			segs = append(segs, sg)
		}
	}
	return "/" + strings.Join(segs, "/")
}

// globMatch matches a folder path against a normalized glob.
func globMatch(glob, p string) bool {
	return segMatch(splitPath(glob), splitPath(p))
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// segMatch reports whether the glob segments g match the path segments p.
func segMatch(g, p []string) bool {
	ok, _ := segMatchCount(g, p)
	return ok
}

// segMatchCount is segMatch, also counting the segments it compared.
// m[i][j] says whether g[i:] matches p[j:]; filling it from the end makes the
// work at most len(g)×len(p) whatever the number of "**" (trying every split
// of each "**" recursively was exponential in them, under the broker's
// lock). A segment is compared only where the rest of the glob matches the
// rest of the path, so a glob that cannot match ends in one pass over its
// last segment, and each comparison is linear (starMatch): a stream's
// globs cost little per event however they are written.
func segMatchCount(g, p []string) (bool, int) {
	m := make([][]bool, len(g)+1)
	for i := range m {
		m[i] = make([]bool, len(p)+1)
	}
	m[len(g)][len(p)] = true
	n := 0
	for i := len(g) - 1; i >= 0; i-- {
		for j := len(p); j >= 0; j-- {
			switch {
			case g[i] == "**":
				m[i][j] = m[i+1][j] || (j < len(p) && m[i][j+1])
			case j < len(p) && m[i+1][j+1]:
				n++
				m[i][j] = starMatch(g[i], p[j])
			}
		}
	}
	return m[0][0], n
}

// starMatch reports whether a folder name matches a glob segment, whose only
// wildcard is "*" (folder names are letters, digits, "-" and "_"). The
// literal pieces between stars are found leftmost in turn, which is exact
// when "*" is the only wildcard, in time linear in the two lengths
// (path.Match's retries of each piece at every offset cost their product).
func starMatch(pattern, name string) bool {
	pieces := strings.Split(pattern, "*")
	if len(pieces) == 1 {
		return pattern == name
	}
	first, last := pieces[0], pieces[len(pieces)-1]
	if len(name) < len(first)+len(last) || !strings.HasPrefix(name, first) || !strings.HasSuffix(name, last) {
		return false
	}
	rest := name[len(first) : len(name)-len(last)]
	for _, piece := range pieces[1 : len(pieces)-1] {
		k := strings.Index(rest, piece)
		if k < 0 {
			return false
		}
		rest = rest[k+len(piece):]
	}
	return true
}

// publish announces committed changes to shared secrets (personal overrides
// are their owner's business).
func (s *Service) publish(ctx context.Context, typ events.Type, secs ...Secret) {
	if s.feed == nil {
		return
	}
	evs := make([]events.Event, 0, len(secs))
	for _, sec := range secs {
		if sec.Type == Personal {
			continue
		}
		evs = append(evs, events.Event{Type: typ, ProjectID: sec.ProjectID, Env: sec.Env, Path: sec.Path, Key: sec.Key,
			Tags: tagSlugs(sec.Tags), Version: sec.Version})
	}
	s.feed.Publish(ctx, evs)
}
