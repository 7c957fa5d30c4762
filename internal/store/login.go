package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

// Universal Auth logins are committed in groups. Every login consumes a use
// of its client secret with a conditional update of the secret's row, and
// holds that row's lock until its commit is durable; logins sharing a secret
// (a fleet of machines with one credential) would commit one after the other,
// at one disk flush each. Instead, the logins that arrive while a group is
// committing wait and form the next group: one transaction that grants uses in
// arrival order up to each secret's limit and writes every granted login's
// token row, audit event and membership note, then answers all of them. Use
// limits, lockouts and revocations are checked inside that transaction, on
// locked rows, exactly as for a single login; a login is answered only after
// its group has committed.

// maxLoginGroup bounds one group (and so one statement's parameters).
const maxLoginGroup = 64

type loginReq struct {
	l   identity.UALogin
	tok identity.AccessToken
	ev  audit.Event

	ok  bool
	err error
}

// LoginWithClientSecret consumes one use of l.Secret with a conditional
// update (so concurrent logins can never exceed the limit, nor pass a lock)
// and, in the same transaction, stores the token, clears the lockout, notes
// the login on the identity's membership and records ev. Concurrent logins
// share one transaction (db.logins, a committer); on PostgreSQL it is one
// statement. The group is committed for every login in it: a cancelled
// request does not fail the others.
func (db *DB) LoginWithClientSecret(ctx context.Context, l identity.UALogin, tok identity.AccessToken, ev audit.Event) (bool, error) {
	r := &loginReq{l: l, tok: tok, ev: ev}
	db.logins.do(r)
	return r.ok, r.err
}

func failLogin(r *loginReq, err error) {
	r.ok, r.err = false, errs.Internalf(err, "login group aborted")
}

// commitLogins commits a group, setting each request's outcome. A group
// that fails is retried one login at a time, so one bad login (say, of an
// identity deleted meanwhile) cannot fail the others.
func (db *DB) commitLogins(ctx context.Context, group []*loginReq) {
	err := db.commitLoginGroup(ctx, group)
	if err == nil {
		return
	}
	if len(group) == 1 {
		group[0].ok, group[0].err = false, err
		return
	}
	for _, r := range group {
		r.ok = false
		r.err = db.commitLoginGroup(ctx, []*loginReq{r})
	}
}

func (db *DB) commitLoginGroup(ctx context.Context, group []*loginReq) error {
	if db.dialect == Postgres {
		return withRetries(ctx, func() error { return db.pgLoginGroup(ctx, group) })
	}
	// Quiet: a login changes nothing a cache holds (new token rows, counts).
	return db.transactQuiet(ctx, func(tx *Tx) error { return tx.sqliteLoginGroup(ctx, group) })
}

// SQLite's login statements, prepared once (prepared.go).
const (
	sqliteConsumeUse = `UPDATE identity_ua_client_secrets SET num_uses = num_uses + 1, last_used_at = ?
		WHERE id = ? AND revoked = FALSE AND (num_uses_limit = 0 OR num_uses < num_uses_limit)
		AND (ttl = 0 OR created_at + ttl * 1000000 > ?)
		AND NOT (? AND EXISTS (SELECT 1 FROM identity_ua_lockouts WHERE identity_ua_id = ? AND locked_until > ?))`
	sqliteInsertToken  = `INSERT INTO identity_access_tokens (` + newTokenCols + `) VALUES (` + newTokenVals + `)`
	sqliteClearLockout = `DELETE FROM identity_ua_lockouts WHERE identity_ua_id = ?`
	sqliteNoteLogin    = `UPDATE org_memberships SET last_login_auth_method = '` + identity.MethodUniversalAuth + `',
		last_login_time = ? WHERE org_id = ? AND identity_id = ?`
	sqliteInsertAudit = auditInsert + auditRow
)

// sqliteLoginGroup writes a group in tx, in arrival order: SQLite's single
// writer makes each login's conditional update see every use taken before
// it. Like PostgreSQL's statement, it checks every lock before clearing any,
// and clears each configuration's lockout and notes each identity's login
// once for the group.
func (tx *Tx) sqliteLoginGroup(ctx context.Context, group []*loginReq) error {
	var st [5]*sql.Stmt
	for i, q := range []string{sqliteConsumeUse, sqliteInsertToken, sqliteInsertAudit, sqliteClearLockout, sqliteNoteLogin} {
		var err error
		if st[i], err = tx.prepared(ctx, q); err != nil {
			return dbErr(err, "prepare login statement")
		}
	}
	consume, insertToken, insertAudit, clearLockout, noteLogin := st[0], st[1], st[2], st[3], st[4]
	type member struct{ org, identity string }
	uas, members := map[string]bool{}, map[member]bool{}
	for _, r := range group {
		r.ok = false
	}
	for _, r := range group {
		l, tok := r.l, r.tok
		res, err := consume.ExecContext(ctx, ts(tx.Now), l.Secret.ID, ts(tx.Now), l.UA.LockoutEnabled, l.UA.ID, ts(tx.Now))
		if err != nil {
			return dbErr(err, "consume client secret use")
		}
		if n, _ := res.RowsAffected(); n != 1 {
			continue
		}
		if _, err := insertToken.ExecContext(ctx, newTokenArgs(tok)...); err != nil {
			return dbErr(err, "insert access token")
		}
		if _, err := insertAudit.ExecContext(ctx, auditArgs(nil, r.ev, tx.Now)...); err != nil {
			return dbErr(err, "insert audit event")
		}
		r.ok = true
		uas[l.UA.ID] = true
		members[member{l.Identity.OrgID, tok.IdentityID}] = true
	}
	for ua := range uas {
		if _, err := clearLockout.ExecContext(ctx, ua); err != nil {
			return dbErr(err, "clear lockout")
		}
	}
	for m := range members {
		if _, err := noteLogin.ExecContext(ctx, ts(tx.Now), m.org, m.identity); err != nil {
			return dbErr(err, "record login")
		}
	}
	return nil
}

// pgLoginCols are the columns of one login in pgLoginGroup's req list.
var pgLoginCols = []struct{ name, typ string }{
	{"ord", "INT"}, {"secret_id", "TEXT"}, {"ua_id", "TEXT"}, {"lockout", "BOOLEAN"}, {"org_id", "TEXT"},
	{"token_id", "TEXT"}, {"identity_id", "TEXT"}, {"ttl", "BIGINT"}, {"max_ttl", "BIGINT"}, {"period", "BIGINT"},
	{"uses_limit", "BIGINT"}, {"trusted_ips", "TEXT"}, {"created_at", "BIGINT"},
	// The audit event, in auditArgs' order.
	{"event_id", "TEXT"}, {"event_org_id", "TEXT"}, {"event_project_org", "TEXT"}, {"project_id", "TEXT"}, {"project_name", "TEXT"},
	{"actor_type", "TEXT"}, {"actor_id", "TEXT"}, {"actor_metadata", "TEXT"}, {"event_type", "TEXT"}, {"event_metadata", "TEXT"},
	{"ip_address", "TEXT"}, {"user_agent", "TEXT"}, {"user_agent_type", "TEXT"}, {"event_at", "BIGINT"},
}

// pgLoginGroupSQL[n]() commits a group of n logins in one statement (so one
// round trip and one transaction), given the group's time and then
// pgLoginCols for each login (PostgreSQL placeholders: this is its
// dialect); it returns the ord of each login granted.
//
// cur locks the group's consumable secrets and reads them as they are now
// (READ COMMITTED: after waiting for a concurrent login, the newest version),
// so the grants are exact whatever commits concurrently; used then sets each
// count from that locked value. Data-modifying WITH parts always run to
// completion, and see what granted holds once.
//
// Each text is built the first time a group of its size commits, not when
// the package loads (all 64 took ~31 ms, in every process, CLI included).
var pgLoginGroupSQL = func() (q [maxLoginGroup + 1]func() string) {
	for n := 1; n <= maxLoginGroup; n++ {
		q[n] = sync.OnceValue(func() string { return pgLoginGroupQuery(n) })
	}
	return q
}()

func pgLoginGroupQuery(n int) string {
	var cols, rows strings.Builder
	for i, c := range pgLoginCols {
		if i > 0 {
			cols.WriteString(", ")
		}
		cols.WriteString(c.name)
	}
	p := 1 // $1 is the clock
	for r := range n {
		if r > 0 {
			rows.WriteString(", ")
		}
		rows.WriteString("(")
		for i, c := range pgLoginCols {
			if i > 0 {
				rows.WriteString(", ")
			}
			p++
			fmt.Fprintf(&rows, "CAST($%d AS %s)", p, c.typ)
		}
		rows.WriteString(")")
	}
	return `WITH clock (t) AS (VALUES (CAST($1 AS BIGINT))
), req (` + cols.String() + `) AS (VALUES ` + rows.String() + `
), cur AS (
	SELECT id, num_uses, num_uses_limit FROM identity_ua_client_secrets
	WHERE id IN (SELECT secret_id FROM req) AND revoked = FALSE AND (ttl = 0 OR created_at + ttl * 1000000 > (SELECT t FROM clock))
	ORDER BY id FOR UPDATE
), granted AS (
	-- Logins not locked out, in order, up to the uses each secret has left.
	SELECT r.* FROM (
		SELECT req.*, ROW_NUMBER() OVER (PARTITION BY secret_id ORDER BY ord) AS nth FROM req
		WHERE NOT (lockout AND EXISTS (SELECT 1 FROM identity_ua_lockouts l
			WHERE l.identity_ua_id = req.ua_id AND l.locked_until > (SELECT t FROM clock)))
	) r JOIN cur ON cur.id = r.secret_id
	WHERE cur.num_uses_limit = 0 OR r.nth <= cur.num_uses_limit - cur.num_uses
), used AS (
	UPDATE identity_ua_client_secrets s SET num_uses = cur.num_uses + g.n, last_used_at = (SELECT t FROM clock)
	FROM cur JOIN (SELECT secret_id, COUNT(*) AS n FROM granted GROUP BY secret_id) g ON g.secret_id = cur.id
	WHERE s.id = cur.id
), token AS (
	INSERT INTO identity_access_tokens (id, identity_id, auth_method, name, client_secret_id, access_token_ttl,
		access_token_max_ttl, access_token_period, num_uses, num_uses_limit, trusted_ips, revoked, created_at, updated_at)
	SELECT token_id, identity_id, '` + identity.MethodUniversalAuth + `', '', secret_id, ttl, max_ttl, period, 0, uses_limit,
		trusted_ips, FALSE, created_at, created_at FROM granted
), unlocked AS (
	DELETE FROM identity_ua_lockouts WHERE identity_ua_id IN (SELECT ua_id FROM granted)
), seen AS (
	UPDATE org_memberships SET last_login_auth_method = '` + identity.MethodUniversalAuth + `', last_login_time = (SELECT t FROM clock)
	WHERE (org_id, identity_id) IN (SELECT org_id, identity_id FROM granted)
), event AS (
	INSERT INTO audit_logs (id, org_id, project_id, project_name, actor_type, actor_id, actor_metadata, event_type,
		event_metadata, ip_address, user_agent, user_agent_type, created_at)
	SELECT event_id, COALESCE(NULLIF(event_org_id, ''), (SELECT org_id FROM projects WHERE id = event_project_org), ''),
		project_id, project_name, actor_type, actor_id, actor_metadata, event_type, event_metadata, ip_address,
		user_agent, user_agent_type, event_at FROM granted
)
SELECT ord FROM granted`
}

// pgLoginGroup commits group with pgLoginGroupSQL.
func (db *DB) pgLoginGroup(ctx context.Context, group []*loginReq) error {
	now := db.Now()
	args := []any{ts(now)}
	for i, r := range group {
		l, t, ev := r.l, r.tok, r.ev
		args = append(args, i, l.Secret.ID, l.UA.ID, l.UA.LockoutEnabled, l.Identity.OrgID,
			t.ID, t.IdentityID, t.TTL, t.MaxTTL, t.Period, t.NumUsesLimit, ipsJSON(t.TrustedIPs), ts(t.CreatedAt))
		args = auditArgs(args, ev, now)
	}
	rows, err := db.write.QueryContext(ctx, pgLoginGroupSQL[len(group)](), args...)
	if err != nil {
		return dbErr(err, "LoginWithClientSecret")
	}
	defer rows.Close()
	granted := make([]bool, len(group))
	for rows.Next() {
		var ord int
		if err := rows.Scan(&ord); err != nil {
			return dbErr(err, "LoginWithClientSecret")
		}
		granted[ord] = true
	}
	if err := rows.Err(); err != nil {
		return dbErr(err, "LoginWithClientSecret")
	}
	for i, r := range group {
		r.ok = granted[i]
	}
	return nil
}
