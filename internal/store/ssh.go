package store

import (
	"context"
	"encoding/json"

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

// UpdateSSHCA writes a CA's name and status with ev.
func (db *DB) UpdateSSHCA(ctx context.Context, ca sshca.CA, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE ssh_cas SET friendly_name = ?, status = ?, updated_at = ? WHERE id = ?`,
			ca.FriendlyName, ca.Status, ts(ca.UpdatedAt), ca.ID)
		if err != nil {
			return dbErr(err, "UpdateSSHCA")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "UpdateSSHCA")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteSSHCA deletes a CA, its templates and certificate records, with ev;
// errs.Conflict while a host uses it.
func (db *DB) DeleteSSHCA(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
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

// UpdateSSHTemplate writes a template with ev.
func (db *DB) UpdateSSHTemplate(ctx context.Context, t sshca.Template, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE ssh_certificate_templates SET name = ?, status = ?, ttl = ?, max_ttl = ?, allowed_users = ?,
			allowed_hosts = ?, allow_user_certs = ?, allow_host_certs = ?, allow_custom_key_ids = ?, extensions = ?, critical_options = ?,
			updated_at = ? WHERE id = ?`,
			t.Name, t.Status, t.TTL, t.MaxTTL, jsonText(t.AllowedUsers), jsonText(t.AllowedHosts), t.AllowUserCerts, t.AllowHostCerts,
			t.AllowCustomKeyIDs, jsonText(t.Extensions), jsonText(t.CriticalOptions), ts(t.UpdatedAt), t.ID)
		if err != nil {
			return dbErr(err, "UpdateSSHTemplate")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "UpdateSSHTemplate")
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

// RecordSSHCert stores an issued certificate's record with ev; errs.Conflict
// if its CA already issued the serial. No cache holds certificate records,
// so issuing one leaves every node's caches alone.
func (db *DB) RecordSSHCert(ctx context.Context, c sshca.Cert, ev audit.Event) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
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
	rows, err := db.readq(ctx, `SELECT `+sshCertCols+` FROM ssh_certificates WHERE project_id = ? ORDER BY created_at DESC, id LIMIT ? OFFSET ?`,
		projectID, limit, offset)
	if err != nil {
		return nil, 0, dbErr(err, "SSHCerts")
	}
	defer rows.Close()
	out := []sshca.Cert{}
	for rows.Next() {
		var c sshca.Cert
		var tpl, host *string
		var typ string
		if err := rows.Scan(&c.ID, &c.ProjectID, &c.CAID, &tpl, &host, &c.Serial, &typ, jsonCol{&c.Principals}, &c.KeyID,
			timeCol{&c.NotBefore}, timeCol{&c.NotAfter}, timeCol{&c.CreatedAt}); err != nil {
			return nil, 0, dbErr(err, "scan SSH certificate")
		}
		if tpl != nil {
			c.TemplateID = *tpl
		}
		if host != nil {
			c.HostID = *host
		}
		c.Type = sshca.CertType(typ)
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
		if _, err := tx.exec(ctx, `INSERT INTO ssh_hosts (`+sshHostCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			h.ID, h.OrgID, h.ProjectID, h.Hostname, h.Alias, h.UserCertTTL, h.HostCertTTL, h.UserCAID, h.HostCAID,
			mappingsText(h.LoginMappings), ts(h.CreatedAt), ts(h.UpdatedAt)); err != nil {
			return dbErr(err, "CreateSSHHost")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// SSHHost finds a host by id.
func (db *DB) SSHHost(ctx context.Context, id string) (sshca.Host, error) {
	h, err := scanSSHHost(db.readRow(ctx, `SELECT `+sshHostCols+` FROM ssh_hosts WHERE id = ?`, id))
	return h, dbErr(err, "SSHHost")
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
	return out, dbErr(rows.Err(), "SSHHosts")
}

// UpdateSSHHost writes a host with ev; errs.Conflict on a taken hostname.
func (db *DB) UpdateSSHHost(ctx context.Context, h sshca.Host, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE ssh_hosts SET hostname = ?, alias = ?, user_cert_ttl = ?, host_cert_ttl = ?, login_mappings = ?,
			updated_at = ? WHERE id = ?`, h.Hostname, h.Alias, h.UserCertTTL, h.HostCertTTL, mappingsText(h.LoginMappings), ts(h.UpdatedAt), h.ID)
		if err != nil {
			return dbErr(err, "UpdateSSHHost")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "UpdateSSHHost")
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
