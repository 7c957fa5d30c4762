package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/sshca"
)

var _ sshca.Store = (*DB)(nil)

// jsonCol scans a JSON text column into v.
type jsonCol struct{ v any }

func (c jsonCol) Scan(src any) error {
	var b []byte
	switch s := src.(type) {
	case string:
		b = []byte(s)
	case []byte:
		b = s
	case nil:
		return nil
	default:
		return errs.Internalf(nil, "json column: unexpected %T", src)
	}
	return json.Unmarshal(b, c.v)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain lists and maps of strings are stored
	}
	return string(b)
}

const sshCACols = `id, org_id, project_id, friendly_name, key_algorithm, status, public_key, created_at, updated_at`

func scanSSHCA(sc interface{ Scan(...any) error }) (sshca.CA, error) {
	var ca sshca.CA
	var alg string
	err := sc.Scan(&ca.ID, &ca.OrgID, &ca.ProjectID, &ca.FriendlyName, &alg, &ca.Status, &ca.PublicKey,
		timeCol{&ca.CreatedAt}, timeCol{&ca.UpdatedAt})
	ca.KeyAlgorithm = sshca.Algorithm(alg)
	return ca, err
}

// CreateSSHCA stores a CA with its sealed private key and ev.
func (db *DB) CreateSSHCA(ctx context.Context, ca sshca.CA, sealedKey []byte, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.bounded(ctx, "projects", "ssh_cas", "project_id", ca.ProjectID, sshca.MaxCAsPerProject, sshca.TooManyCAs); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO ssh_cas (`+sshCACols+`, private_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ca.ID, ca.OrgID, ca.ProjectID, ca.FriendlyName, string(ca.KeyAlgorithm), ca.Status, ca.PublicKey,
			ts(ca.CreatedAt), ts(ca.UpdatedAt), sealedKey); err != nil {
			return dbErr(err, "CreateSSHCA")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// SSHCA finds a CA by id.
func (db *DB) SSHCA(ctx context.Context, id string) (sshca.CA, error) {
	ca, err := scanSSHCA(db.readRow(ctx, `SELECT `+sshCACols+` FROM ssh_cas WHERE id = ?`, id))
	return ca, dbErr(err, "SSHCA")
}

// SSHCAPrivateKey reads a CA's sealed private key.
func (db *DB) SSHCAPrivateKey(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := db.readRow(ctx, `SELECT private_key FROM ssh_cas WHERE id = ?`, id).Scan(&b)
	return b, dbErr(err, "SSHCAPrivateKey")
}

// SSHCAs lists a project's CAs, oldest first.
func (db *DB) SSHCAs(ctx context.Context, projectID string) ([]sshca.CA, error) {
	rows, err := db.readq(ctx, `SELECT `+sshCACols+` FROM ssh_cas WHERE project_id = ? ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, dbErr(err, "SSHCAs")
	}
	defer rows.Close()
	out := []sshca.CA{}
	for rows.Next() {
		ca, err := scanSSHCA(rows)
		if err != nil {
			return nil, dbErr(err, "scan SSH CA")
		}
		out = append(out, ca)
	}
	return out, dbErr(rows.Err(), "SSHCAs")
}

// UpdateSSHCA writes a CA's name and status with ev if it is still as read
// at prev (project.ErrStale otherwise, also when it is gone).
func (db *DB) UpdateSSHCA(ctx context.Context, ca sshca.CA, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE ssh_cas SET friendly_name = ?, status = ?, updated_at = ? WHERE id = ? AND updated_at = ?`,
			ca.FriendlyName, ca.Status, ts(ca.UpdatedAt), ca.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateSSHCA"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteSSHCA deletes a CA, its templates and certificate records, with ev;
// errs.Conflict while a host uses it.
func (db *DB) DeleteSSHCA(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// The project (deleting the CA clears the project's SSH settings
		// that name it, which references the project), then the CA, as an
		// issuance's transaction takes them (DeleteCA).
		if err := tx.holdProjectOf(ctx, "ssh_cas", id); err != nil {
			return err
		}
		if err := tx.lockForDelete(ctx, "ssh_cas", id); err != nil {
			return err
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM ssh_hosts WHERE user_ssh_ca_id = ? OR host_ssh_ca_id = ?`, id, id).Scan(&n); err != nil {
			return dbErr(err, "DeleteSSHCA")
		}
		if n > 0 {
			return errs.Conflictf("the SSH CA is used by %d hosts", n)
		}
		for _, q := range []string{`DELETE FROM ssh_certificates WHERE ssh_ca_id = ?`, `DELETE FROM ssh_certificate_templates WHERE ssh_ca_id = ?`} {
			if _, err := tx.exec(ctx, q, id); err != nil {
				return dbErr(err, "DeleteSSHCA")
			}
		}
		res, err := tx.exec(ctx, `DELETE FROM ssh_cas WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteSSHCA")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteSSHCA")
		}
		return tx.insertAudit(ctx, ev)
	})
}

const sshTemplateCols = `id, project_id, ssh_ca_id, name, status, ttl, max_ttl, allowed_users, allowed_hosts,
	allow_user_certs, allow_host_certs, allow_custom_key_ids, extensions, critical_options, created_at, updated_at`

func scanSSHTemplate(sc interface{ Scan(...any) error }) (sshca.Template, error) {
	var t sshca.Template
	err := sc.Scan(&t.ID, &t.ProjectID, &t.CAID, &t.Name, &t.Status, &t.TTL, &t.MaxTTL, jsonCol{&t.AllowedUsers}, jsonCol{&t.AllowedHosts},
		&t.AllowUserCerts, &t.AllowHostCerts, &t.AllowCustomKeyIDs, jsonCol{&t.Extensions}, jsonCol{&t.CriticalOptions},
		timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt})
	return t, err
}

// CreateSSHTemplate stores a template with ev; errs.Conflict on a taken name.
func (db *DB) CreateSSHTemplate(ctx context.Context, t sshca.Template, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.bounded(ctx, "projects", "ssh_certificate_templates", "project_id", t.ProjectID, sshca.MaxTemplatesPerProject, sshca.TooManyTemplates); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO ssh_certificate_templates (`+sshTemplateCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.ProjectID, t.CAID, t.Name, t.Status, t.TTL, t.MaxTTL, jsonText(t.AllowedUsers), jsonText(t.AllowedHosts),
			t.AllowUserCerts, t.AllowHostCerts, t.AllowCustomKeyIDs, jsonText(t.Extensions), jsonText(t.CriticalOptions),
			ts(t.CreatedAt), ts(t.UpdatedAt)); err != nil {
			return dbErr(err, "CreateSSHTemplate")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// SSHTemplate finds a template by id.
func (db *DB) SSHTemplate(ctx context.Context, id string) (sshca.Template, error) {
	t, err := scanSSHTemplate(db.readRow(ctx, `SELECT `+sshTemplateCols+` FROM ssh_certificate_templates WHERE id = ?`, id))
	return t, dbErr(err, "SSHTemplate")
}

// SSHTemplates lists a project's templates by name, or one CA's.
func (db *DB) SSHTemplates(ctx context.Context, projectID, caID string) ([]sshca.Template, error) {
	q, args := `SELECT `+sshTemplateCols+` FROM ssh_certificate_templates WHERE project_id = ?`, []any{projectID}
	if caID != "" {
		q, args = q+` AND ssh_ca_id = ?`, append(args, caID)
	}
	rows, err := db.readq(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, dbErr(err, "SSHTemplates")
	}
	defer rows.Close()
	out := []sshca.Template{}
	for rows.Next() {
		t, err := scanSSHTemplate(rows)
		if err != nil {
			return nil, dbErr(err, "scan SSH template")
		}
		out = append(out, t)
	}
	return out, dbErr(rows.Err(), "SSHTemplates")
}

// UpdateSSHTemplate writes a template with ev if it is still as read at
// prev (project.ErrStale otherwise); errs.Conflict on a taken name.
func (db *DB) UpdateSSHTemplate(ctx context.Context, t sshca.Template, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE ssh_certificate_templates SET name = ?, status = ?, ttl = ?, max_ttl = ?, allowed_users = ?,
			allowed_hosts = ?, allow_user_certs = ?, allow_host_certs = ?, allow_custom_key_ids = ?, extensions = ?, critical_options = ?,
			updated_at = ? WHERE id = ? AND updated_at = ?`,
			t.Name, t.Status, t.TTL, t.MaxTTL, jsonText(t.AllowedUsers), jsonText(t.AllowedHosts), t.AllowUserCerts, t.AllowHostCerts,
			t.AllowCustomKeyIDs, jsonText(t.Extensions), jsonText(t.CriticalOptions), ts(t.UpdatedAt), t.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateSSHTemplate"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteSSHTemplate deletes a template with ev.
func (db *DB) DeleteSSHTemplate(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM ssh_certificate_templates WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteSSHTemplate")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteSSHTemplate")
		}
		return tx.insertAudit(ctx, ev)
	})
}

const sshCertCols = `id, project_id, ssh_ca_id, template_id, host_id, serial, cert_type, principals, key_id, not_before, not_after, created_at`

// sshCertReadCols are sshCertCols and the revocation time.
const sshCertReadCols = sshCertCols + `, revoked_at`

func scanSSHCert(sc interface{ Scan(...any) error }) (sshca.Cert, error) {
	var c sshca.Cert
	var tpl, host *string
	var typ string
	if err := sc.Scan(&c.ID, &c.ProjectID, &c.CAID, &tpl, &host, &c.Serial, &typ, jsonCol{&c.Principals}, &c.KeyID,
		timeCol{&c.NotBefore}, timeCol{&c.NotAfter}, timeCol{&c.CreatedAt}, timeCol{&c.RevokedAt}); err != nil {
		return sshca.Cert{}, err
	}
	if tpl != nil {
		c.TemplateID = *tpl
	}
	if host != nil {
		c.HostID = *host
	}
	c.Type = sshca.CertType(typ)
	return c, nil
}

// RecordSSHCert stores an issued certificate's record with ev, if its CA is
// still active (caActive; a 400 otherwise) and its template and host are
// as b says they were checked (unchangedSince; project.ErrStale
// otherwise); errs.Conflict if its CA already issued the serial. No cache
// holds certificate records, so issuing one leaves every node's caches
// alone.
func (db *DB) RecordSSHCert(ctx context.Context, c sshca.Cert, b sshca.Basis, ev audit.Event) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		if err := tx.holdProject(ctx, c.ProjectID); err != nil {
			return err
		}
		if err := tx.caActive(ctx, "ssh_cas", c.CAID); err != nil {
			return err
		}
		if c.TemplateID != "" {
			if err := tx.unchangedSince(ctx, "ssh_certificate_templates", c.TemplateID, b.TemplateAt); err != nil {
				return err
			}
		}
		if c.HostID != "" {
			if err := tx.unchangedSince(ctx, "ssh_hosts", c.HostID, b.HostAt); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO ssh_certificates (`+sshCertCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.ProjectID, c.CAID, nullStr(c.TemplateID), nullStr(c.HostID), c.Serial, string(c.Type), jsonText(c.Principals), c.KeyID,
			ts(c.NotBefore), ts(c.NotAfter), ts(c.CreatedAt)); err != nil {
			return dbErr(err, "RecordSSHCert")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// SSHCerts returns a page of a project's certificate records, newest first.
func (db *DB) SSHCerts(ctx context.Context, projectID string, offset, limit int) ([]sshca.Cert, int, error) {
	var total int
	if err := db.readRow(ctx, `SELECT COUNT(*) FROM ssh_certificates WHERE project_id = ?`, projectID).Scan(&total); err != nil {
		return nil, 0, dbErr(err, "count SSH certificates")
	}
	rows, err := db.readq(ctx, `SELECT `+sshCertReadCols+` FROM ssh_certificates WHERE project_id = ? ORDER BY created_at DESC, id LIMIT ? OFFSET ?`,
		projectID, limit, offset)
	if err != nil {
		return nil, 0, dbErr(err, "SSHCerts")
	}
	defer rows.Close()
	out := []sshca.Cert{}
	for rows.Next() {
		c, err := scanSSHCert(rows)
		if err != nil {
			return nil, 0, dbErr(err, "scan SSH certificate")
		}
		out = append(out, c)
	}
	return out, total, dbErr(rows.Err(), "SSHCerts")
}

const sshHostCols = `id, org_id, project_id, hostname, alias, user_cert_ttl, host_cert_ttl, user_ssh_ca_id, host_ssh_ca_id,
	login_mappings, created_at, updated_at`

// storedMapping is a login mapping as stored.
type storedMapping struct {
	LoginUser  string   `json:"loginUser"`
	Principals []string `json:"principals"`
}

func mappingsText(ms []sshca.LoginMapping) string {
	out := make([]storedMapping, len(ms))
	for i, m := range ms {
		out[i] = storedMapping{m.LoginUser, m.Principals}
	}
	return jsonText(out)
}

func scanSSHHost(sc interface{ Scan(...any) error }) (sshca.Host, error) {
	var h sshca.Host
	var ms []storedMapping
	err := sc.Scan(&h.ID, &h.OrgID, &h.ProjectID, &h.Hostname, &h.Alias, &h.UserCertTTL, &h.HostCertTTL, &h.UserCAID, &h.HostCAID,
		jsonCol{&ms}, timeCol{&h.CreatedAt}, timeCol{&h.UpdatedAt})
	h.LoginMappings = make([]sshca.LoginMapping, len(ms))
	for i, m := range ms {
		h.LoginMappings[i] = sshca.LoginMapping{LoginUser: m.LoginUser, Principals: m.Principals}
	}
	return h, err
}

// CreateSSHHost stores a host with ev; errs.Conflict on a taken hostname.
func (db *DB) CreateSSHHost(ctx context.Context, h sshca.Host, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.bounded(ctx, "projects", "ssh_hosts", "project_id", h.ProjectID, sshca.MaxHostsPerProject, sshca.TooManyHosts); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO ssh_hosts (`+sshHostCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			h.ID, h.OrgID, h.ProjectID, h.Hostname, h.Alias, h.UserCertTTL, h.HostCertTTL, h.UserCAID, h.HostCAID,
			mappingsText(h.LoginMappings), ts(h.CreatedAt), ts(h.UpdatedAt)); err != nil {
			return dbErr(err, "CreateSSHHost")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// SSHHost finds a host by id, with the login mappings of its groups.
func (db *DB) SSHHost(ctx context.Context, id string) (sshca.Host, error) {
	h, err := scanSSHHost(db.readRow(ctx, `SELECT `+sshHostCols+` FROM ssh_hosts WHERE id = ?`, id))
	if err != nil {
		return sshca.Host{}, dbErr(err, "SSHHost")
	}
	hs := []sshca.Host{h}
	if err := db.inheritMappings(ctx, `m.ssh_host_id = ?`, id, hs); err != nil {
		return sshca.Host{}, err
	}
	return hs[0], nil
}

// inheritMappings fills hs' Inherited with the login mappings of the groups
// the hosts are in, reading the memberships that where (on m, the
// membership, and g, the group) selects with arg. The memberships are read
// without the mappings; each group the hosts are in is then read and
// decoded once: an organization's listing read every membership with its
// group's mappings (up to a megabyte each), a host not in the page
// included, so any member's list decoded hundreds of megabytes.
func (db *DB) inheritMappings(ctx context.Context, where string, arg any, hs []sshca.Host) error {
	idx := make(map[string]int, len(hs))
	for i := range hs {
		idx[hs[i].ID] = i
		hs[i].Inherited = []sshca.LoginMapping{}
	}
	rows, err := db.readq(ctx, `SELECT m.ssh_host_id, g.id FROM ssh_host_group_members m
		JOIN ssh_host_groups g ON g.id = m.ssh_host_group_id WHERE `+where+` ORDER BY g.name, g.id`, arg)
	if err != nil {
		return dbErr(err, "SSH host group mappings")
	}
	type member struct {
		host  int
		group string
	}
	var members []member
	var groups []string
	seen := map[string]bool{}
	for rows.Next() {
		var hostID, groupID string
		if err := rows.Scan(&hostID, &groupID); err != nil {
			rows.Close()
			return dbErr(err, "scan SSH host group mappings")
		}
		if i, ok := idx[hostID]; ok {
			members = append(members, member{i, groupID})
			if !seen[groupID] {
				seen[groupID] = true
				groups = append(groups, groupID)
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return dbErr(err, "SSH host group mappings")
	}
	mappings := make(map[string][]sshca.LoginMapping, len(groups))
	for chunk := range slices.Chunk(groups, fillChunk) {
		rows, err := db.readq(ctx, `SELECT id, login_mappings FROM ssh_host_groups WHERE id IN (`+placeholders(len(chunk))+`)`, withIDs(nil, chunk)...)
		if err != nil {
			return dbErr(err, "SSH host group mappings")
		}
		for rows.Next() {
			var id string
			var ms []storedMapping
			if err := rows.Scan(&id, jsonCol{&ms}); err != nil {
				rows.Close()
				return dbErr(err, "scan SSH host group mappings")
			}
			out := make([]sshca.LoginMapping, len(ms))
			for i, m := range ms {
				out[i] = sshca.LoginMapping{LoginUser: m.LoginUser, Principals: m.Principals}
			}
			mappings[id] = out
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbErr(err, "SSH host group mappings")
		}
	}
	for _, m := range members { // in the groups' order, as read
		hs[m.host].Inherited = append(hs[m.host].Inherited, mappings[m.group]...)
	}
	return nil
}

// SSHHosts lists at most limit hosts of a project (projectID set) or of an
// organization, by hostname.
func (db *DB) SSHHosts(ctx context.Context, orgID, projectID string, limit int) ([]sshca.Host, error) {
	q, arg := `SELECT `+sshHostCols+` FROM ssh_hosts WHERE org_id = ?`, orgID
	if projectID != "" {
		q, arg = `SELECT `+sshHostCols+` FROM ssh_hosts WHERE project_id = ?`, projectID
	}
	rows, err := db.readq(ctx, q+` ORDER BY hostname, id LIMIT ?`, arg, limit)
	if err != nil {
		return nil, dbErr(err, "SSHHosts")
	}
	defer rows.Close()
	out := []sshca.Host{}
	for rows.Next() {
		h, err := scanSSHHost(rows)
		if err != nil {
			return nil, dbErr(err, "scan SSH host")
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "SSHHosts")
	}
	rows.Close()
	where, warg := `g.org_id = ?`, any(orgID)
	if projectID != "" {
		where, warg = `g.project_id = ?`, projectID
	}
	return out, db.inheritMappings(ctx, where, warg, out)
}

// UpdateSSHHost writes a host with ev if it is still as read at prev
// (project.ErrStale otherwise); errs.Conflict on a taken hostname.
func (db *DB) UpdateSSHHost(ctx context.Context, h sshca.Host, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE ssh_hosts SET hostname = ?, alias = ?, user_cert_ttl = ?, host_cert_ttl = ?, login_mappings = ?,
			updated_at = ? WHERE id = ? AND updated_at = ?`, h.Hostname, h.Alias, h.UserCertTTL, h.HostCertTTL, mappingsText(h.LoginMappings),
			ts(h.UpdatedAt), h.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateSSHHost"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteSSHHost deletes a host with ev.
func (db *DB) DeleteSSHHost(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM ssh_hosts WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteSSHHost")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteSSHHost")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// SSHCert finds a certificate record by id.
func (db *DB) SSHCert(ctx context.Context, id string) (sshca.Cert, error) {
	c, err := scanSSHCert(db.readRow(ctx, `SELECT `+sshCertReadCols+` FROM ssh_certificates WHERE id = ?`, id))
	return c, dbErr(err, "SSHCert")
}

// SSHCertsBySerial finds the certificate records of a serial, across CAs.
func (db *DB) SSHCertsBySerial(ctx context.Context, serial string) ([]sshca.Cert, error) {
	rows, err := db.readq(ctx, `SELECT `+sshCertReadCols+` FROM ssh_certificates WHERE serial = ? ORDER BY created_at, id LIMIT 100`, serial)
	if err != nil {
		return nil, dbErr(err, "SSHCertsBySerial")
	}
	defer rows.Close()
	out := []sshca.Cert{}
	for rows.Next() {
		c, err := scanSSHCert(rows)
		if err != nil {
			return nil, dbErr(err, "scan SSH certificate")
		}
		out = append(out, c)
	}
	return out, dbErr(rows.Err(), "SSHCertsBySerial")
}

// RevokeSSHCert marks a certificate record revoked with ev; errs.Conflict
// if it already is. It moves the cache generation: KRLs are cached
// (sshca.Service.KRL).
func (db *DB) RevokeSSHCert(ctx context.Context, id string, at time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE ssh_certificates SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ts(at), id)
		if err != nil {
			return dbErr(err, "RevokeSSHCert")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := tx.queryRow(ctx, `SELECT 1 FROM ssh_certificates WHERE id = ?`, id).Scan(&one); err != nil {
				return dbErr(err, "RevokeSSHCert")
			}
			return errs.Conflictf("the SSH certificate is already revoked")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// RevokedSSHSerials returns the serials of a CA's revoked certificates still
// valid at now, and the time of the CA's last revocation (zero if none).
func (db *DB) RevokedSSHSerials(ctx context.Context, caID string, now time.Time) ([]string, time.Time, error) {
	var last time.Time
	if err := db.readRow(ctx, `SELECT MAX(revoked_at) FROM ssh_certificates WHERE ssh_ca_id = ? AND revoked_at IS NOT NULL`, caID).
		Scan(timeCol{&last}); err != nil {
		return nil, time.Time{}, dbErr(err, "RevokedSSHSerials")
	}
	rows, err := db.readq(ctx, `SELECT serial FROM ssh_certificates WHERE ssh_ca_id = ? AND revoked_at IS NOT NULL AND not_after > ?`,
		caID, ts(now))
	if err != nil {
		return nil, time.Time{}, dbErr(err, "RevokedSSHSerials")
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, time.Time{}, dbErr(err, "scan revoked serial")
		}
		out = append(out, s)
	}
	return out, last, dbErr(rows.Err(), "RevokedSSHSerials")
}

const sshConfigCols = `id, project_id, default_user_ssh_ca_id, default_host_ssh_ca_id, created_at, updated_at`

// SSHConfig reads a project's SSH settings.
func (db *DB) SSHConfig(ctx context.Context, projectID string) (sshca.Config, error) {
	var c sshca.Config
	var user, host *string
	err := db.readRow(ctx, `SELECT `+sshConfigCols+` FROM project_ssh_configs WHERE project_id = ?`, projectID).
		Scan(&c.ID, &c.ProjectID, &user, &host, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	if user != nil {
		c.DefaultUserCAID = *user
	}
	if host != nil {
		c.DefaultHostCAID = *host
	}
	return c, dbErr(err, "SSHConfig")
}

// PutSSHConfig creates or replaces a project's SSH settings, with ev.
func (db *DB) PutSSHConfig(ctx context.Context, c sshca.Config, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.holdProject(ctx, c.ProjectID); err != nil {
			return err
		}
		// The CAs it names before the settings row, as deleting a CA takes
		// them (the CA, then the settings it clears).
		cas := slices.Compact(slices.Sorted(slices.Values([]string{c.DefaultUserCAID, c.DefaultHostCAID})))
		for _, id := range cas {
			if id == "" {
				continue
			}
			if err := tx.lockRowWith(ctx, "ssh_cas", id, tx.db.forKeyShare()); err != nil {
				return referenceGone(err)
			}
		}
		res, err := tx.exec(ctx, `UPDATE project_ssh_configs SET default_user_ssh_ca_id = ?, default_host_ssh_ca_id = ?, updated_at = ?
			WHERE project_id = ?`, nullStr(c.DefaultUserCAID), nullStr(c.DefaultHostCAID), ts(c.UpdatedAt), c.ProjectID)
		if err != nil {
			return dbErr(err, "PutSSHConfig")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := tx.exec(ctx, `INSERT INTO project_ssh_configs (`+sshConfigCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
				c.ID, c.ProjectID, nullStr(c.DefaultUserCAID), nullStr(c.DefaultHostCAID), ts(c.CreatedAt), ts(c.UpdatedAt)); err != nil {
				return dbErr(err, "PutSSHConfig")
			}
		}
		return tx.insertAudit(ctx, ev)
	})
}

// BootstrapSSHConfig stores cas and the settings c that name them, with
// evs, in one transaction; errs.Conflict (and nothing stored) if the project
// already has settings.
func (db *DB) BootstrapSSHConfig(ctx context.Context, c sshca.Config, cas []sshca.NewSealedCA, evs []audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		for _, n := range cas {
			ca := n.CA
			if _, err := tx.exec(ctx, `INSERT INTO ssh_cas (`+sshCACols+`, private_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				ca.ID, ca.OrgID, ca.ProjectID, ca.FriendlyName, string(ca.KeyAlgorithm), ca.Status, ca.PublicKey,
				ts(ca.CreatedAt), ts(ca.UpdatedAt), n.SealedKey); err != nil {
				return dbErr(err, "BootstrapSSHConfig")
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO project_ssh_configs (`+sshConfigCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
			c.ID, c.ProjectID, nullStr(c.DefaultUserCAID), nullStr(c.DefaultHostCAID), ts(c.CreatedAt), ts(c.UpdatedAt)); err != nil {
			return dbErr(err, "BootstrapSSHConfig")
		}
		return tx.insertAudits(ctx, evs...)
	})
}

const sshGroupCols = `id, org_id, project_id, name, login_mappings, created_at, updated_at`

func scanSSHGroup(sc interface{ Scan(...any) error }) (sshca.HostGroup, error) {
	var g sshca.HostGroup
	var ms []storedMapping
	err := sc.Scan(&g.ID, &g.OrgID, &g.ProjectID, &g.Name, jsonCol{&ms}, timeCol{&g.CreatedAt}, timeCol{&g.UpdatedAt})
	g.LoginMappings = make([]sshca.LoginMapping, len(ms))
	for i, m := range ms {
		g.LoginMappings[i] = sshca.LoginMapping{LoginUser: m.LoginUser, Principals: m.Principals}
	}
	return g, err
}

// CreateSSHHostGroup stores a group with ev; errs.Conflict on a name the
// organization has.
func (db *DB) CreateSSHHostGroup(ctx context.Context, g sshca.HostGroup, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.bounded(ctx, "projects", "ssh_host_groups", "project_id", g.ProjectID, sshca.MaxHostGroupsPerProject, sshca.TooManyHostGroups); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO ssh_host_groups (`+sshGroupCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.OrgID, g.ProjectID, g.Name, mappingsText(g.LoginMappings), ts(g.CreatedAt), ts(g.UpdatedAt)); err != nil {
			return dbErr(err, "CreateSSHHostGroup")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// SSHHostGroup finds a group by id.
func (db *DB) SSHHostGroup(ctx context.Context, id string) (sshca.HostGroup, error) {
	g, err := scanSSHGroup(db.readRow(ctx, `SELECT `+sshGroupCols+` FROM ssh_host_groups WHERE id = ?`, id))
	return g, dbErr(err, "SSHHostGroup")
}

// SSHHostGroups lists a project's groups by name, with their host counts.
func (db *DB) SSHHostGroups(ctx context.Context, projectID string) ([]sshca.HostGroup, error) {
	rows, err := db.readq(ctx, `SELECT g.id, g.org_id, g.project_id, g.name, g.login_mappings, g.created_at, g.updated_at,
		(SELECT COUNT(*) FROM ssh_host_group_members m WHERE m.ssh_host_group_id = g.id)
		FROM ssh_host_groups g WHERE g.project_id = ? ORDER BY g.name, g.id`, projectID)
	if err != nil {
		return nil, dbErr(err, "SSHHostGroups")
	}
	defer rows.Close()
	out := []sshca.HostGroup{}
	for rows.Next() {
		var g sshca.HostGroup
		var ms []storedMapping
		if err := rows.Scan(&g.ID, &g.OrgID, &g.ProjectID, &g.Name, jsonCol{&ms}, timeCol{&g.CreatedAt}, timeCol{&g.UpdatedAt}, &g.HostCount); err != nil {
			return nil, dbErr(err, "scan SSH host group")
		}
		g.LoginMappings = make([]sshca.LoginMapping, len(ms))
		for i, m := range ms {
			g.LoginMappings[i] = sshca.LoginMapping{LoginUser: m.LoginUser, Principals: m.Principals}
		}
		out = append(out, g)
	}
	return out, dbErr(rows.Err(), "SSHHostGroups")
}

// UpdateSSHHostGroup writes a group's name and mappings with ev if it is
// still as read at prev (project.ErrStale otherwise).
func (db *DB) UpdateSSHHostGroup(ctx context.Context, g sshca.HostGroup, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		var before string // none when the group is gone: the update below is then stale
		err := tx.queryRow(ctx, `SELECT login_mappings FROM ssh_host_groups WHERE id = ?`, g.ID).Scan(&before)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return dbErr(err, "UpdateSSHHostGroup")
		}
		after := mappingsText(g.LoginMappings)
		res, err := tx.exec(ctx, `UPDATE ssh_host_groups SET name = ?, login_mappings = ?, updated_at = ? WHERE id = ? AND updated_at = ?`,
			g.Name, after, ts(g.UpdatedAt), g.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateSSHHostGroup"); err != nil {
			return err
		}
		if after != before { // a rename leaves the hosts alone
			if err := tx.touchGroupHosts(ctx, g.ID); err != nil {
				return err
			}
		}
		return tx.insertAudit(ctx, ev)
	})
}

// touchGroupHosts moves the updated_at of the hosts in group groupID past
// what it was: their inherited login mappings change, and a host user
// certificate checked against the old ones (sshca.Basis.HostAt) must not be
// stored. Taken after the group's row, as a membership change takes them.
func (tx *Tx) touchGroupHosts(ctx context.Context, groupID string) error {
	if tx.db.dialect == Postgres {
		// In id order first: one UPDATE locks rows in its plan's order (the
		// membership index for a small group, the table's order for a large
		// one), and two group changes sharing hosts deadlocked.
		if _, err := tx.exec(ctx, `SELECT id FROM ssh_hosts WHERE id IN
			(SELECT ssh_host_id FROM ssh_host_group_members WHERE ssh_host_group_id = ?) ORDER BY id FOR NO KEY UPDATE`, groupID); err != nil {
			return dbErr(err, "lock the group's hosts")
		}
	}
	_, err := tx.exec(ctx, `UPDATE ssh_hosts SET updated_at = CASE WHEN updated_at >= ? THEN updated_at + 1 ELSE ? END
		WHERE id IN (SELECT ssh_host_id FROM ssh_host_group_members WHERE ssh_host_group_id = ?)`, ts(tx.Now), ts(tx.Now), groupID)
	return dbErr(err, "touch the group's hosts")
}

// DeleteSSHHostGroup deletes a group and its memberships with ev; the
// group's row first, then its hosts' (touchGroupHosts).
func (db *DB) DeleteSSHHostGroup(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.lockForDelete(ctx, "ssh_host_groups", id); err != nil {
			return err
		}
		if err := tx.touchGroupHosts(ctx, id); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM ssh_host_group_members WHERE ssh_host_group_id = ?`, id); err != nil {
			return dbErr(err, "DeleteSSHHostGroup")
		}
		res, err := tx.exec(ctx, `DELETE FROM ssh_host_groups WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteSSHHostGroup")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteSSHHostGroup")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// SSHHostGroupHosts lists a project's hosts by hostname with whether each
// is in the group and since when.
func (db *DB) SSHHostGroupHosts(ctx context.Context, groupID, projectID string) ([]sshca.GroupHost, error) {
	rows, err := db.readq(ctx, `SELECT h.id, h.hostname, h.alias, m.created_at FROM ssh_hosts h
		LEFT JOIN ssh_host_group_members m ON m.ssh_host_id = h.id AND m.ssh_host_group_id = ?
		WHERE h.project_id = ? ORDER BY h.hostname, h.id LIMIT ?`, groupID, projectID, sshca.MaxHostsPerProject)
	if err != nil {
		return nil, dbErr(err, "SSHHostGroupHosts")
	}
	defer rows.Close()
	out := []sshca.GroupHost{}
	for rows.Next() {
		var h sshca.GroupHost
		if err := rows.Scan(&h.ID, &h.Hostname, &h.Alias, timeCol{&h.JoinedAt}); err != nil {
			return nil, dbErr(err, "scan SSH host group host")
		}
		h.InGroup = !h.JoinedAt.IsZero()
		out = append(out, h)
	}
	return out, dbErr(rows.Err(), "SSHHostGroupHosts")
}

// AddSSHHostGroupMember puts a host in a group with ev, if both are still
// as read (project.ErrStale otherwise), and stamps both; errs.Conflict if
// the host is in the group.
func (db *DB) AddSSHHostGroupMember(ctx context.Context, m sshca.Membership, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.stampMembership(ctx, m, "AddSSHHostGroupMember"); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO ssh_host_group_members (ssh_host_group_id, ssh_host_id, created_at) VALUES (?, ?, ?)`,
			m.GroupID, m.HostID, ts(m.At)); err != nil {
			return dbErr(err, "AddSSHHostGroupMember")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// RemoveSSHHostGroupMember takes a host out of a group with ev, if both are
// still as read (project.ErrStale otherwise), and stamps both;
// errs.NotFound if it is not in it.
func (db *DB) RemoveSSHHostGroupMember(ctx context.Context, m sshca.Membership, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.stampMembership(ctx, m, "RemoveSSHHostGroupMember"); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM ssh_host_group_members WHERE ssh_host_group_id = ? AND ssh_host_id = ?`, m.GroupID, m.HostID)
		if err != nil {
			return dbErr(err, "RemoveSSHHostGroupMember")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "RemoveSSHHostGroupMember")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// stampMembership moves the updated_at of m's group and host to m.At if
// they are still as read (project.ErrStale otherwise).
func (tx *Tx) stampMembership(ctx context.Context, m sshca.Membership, op string) error {
	res, err := tx.exec(ctx, `UPDATE ssh_host_groups SET updated_at = ? WHERE id = ? AND updated_at = ?`, ts(m.At), m.GroupID, ts(m.GroupPrev))
	if err := staleIfNone(res, err, op); err != nil {
		return err
	}
	res, err = tx.exec(ctx, `UPDATE ssh_hosts SET updated_at = ? WHERE id = ? AND updated_at = ?`, ts(m.At), m.HostID, ts(m.HostPrev))
	return staleIfNone(res, err, op)
}
