package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/pki"
	"github.com/lockbox-dev/lockbox/internal/project"
)

var _ pki.Store = (*DB)(nil)

const pkiCACols = `id, org_id, project_id, ca_type, status, friendly_name, common_name, organization, ou, country, province, locality,
	dn, key_algorithm, max_path_length, parent_ca_id, serial_number, not_before, not_after, certificate, certificate_chain,
	private_key, created_at, updated_at, require_template_for_issuance`

// pkiCAListCols is pkiCACols without the sealed private key, for lists:
// only the signing path (CA by id) reads a key.
var pkiCAListCols = strings.Replace(pkiCACols, "private_key", "NULL", 1)

func scanCA(sc interface{ Scan(...any) error }) (pki.CA, error) {
	var c pki.CA
	var typ, status, alg string
	err := sc.Scan(&c.ID, &c.OrgID, &c.ProjectID, &typ, &status, &c.FriendlyName, &c.Subject.CommonName, &c.Subject.Organization,
		&c.Subject.OU, &c.Subject.Country, &c.Subject.Province, &c.Subject.Locality, &c.DN, &alg, &c.MaxPathLength, &c.ParentCAID,
		&c.SerialNumber, timeCol{&c.NotBefore}, timeCol{&c.NotAfter}, &c.Certificate, &c.Chain, &c.SealedKey,
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}, &c.RequireTemplate)
	c.Type, c.Status, c.KeyAlgorithm = pki.CAType(typ), pki.CAStatus(status), pki.KeyAlgorithm(alg)
	return c, err
}

// CreateCA stores a CA with ev.
func (db *DB) CreateCA(ctx context.Context, c pki.CA, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.bounded(ctx, "projects", "pki_cas", "project_id", c.ProjectID, pki.MaxCAsPerProject, pki.TooManyCAs); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO pki_cas (`+pkiCACols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.OrgID, c.ProjectID, string(c.Type), string(c.Status), c.FriendlyName, c.Subject.CommonName, c.Subject.Organization,
			c.Subject.OU, c.Subject.Country, c.Subject.Province, c.Subject.Locality, c.DN, string(c.KeyAlgorithm), c.MaxPathLength,
			c.ParentCAID, c.SerialNumber, ts(c.NotBefore), ts(c.NotAfter), c.Certificate, c.Chain, c.SealedKey,
			ts(c.CreatedAt), ts(c.UpdatedAt), c.RequireTemplate); err != nil {
			return dbErr(err, "CreateCA")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// CA finds a CA by id.
func (db *DB) CA(ctx context.Context, id string) (pki.CA, error) {
	c, err := scanCA(db.readRow(ctx, `SELECT `+pkiCACols+` FROM pki_cas WHERE id = ?`, id))
	return c, dbErr(err, "CA")
}

// CAs lists a project's CAs, oldest first.
func (db *DB) CAs(ctx context.Context, projectID string) ([]pki.CA, error) {
	rows, err := db.readq(ctx, `SELECT `+pkiCAListCols+` FROM pki_cas WHERE project_id = ? ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, dbErr(err, "CAs")
	}
	defer rows.Close()
	out := []pki.CA{}
	for rows.Next() {
		c, err := scanCA(rows)
		if err != nil {
			return nil, dbErr(err, "scan CA")
		}
		out = append(out, c)
	}
	return out, dbErr(rows.Err(), "CAs")
}

// UpdateCA writes a CA's mutable columns with ev, provided it is still as
// read: its status from, its updated_at prev (errs.Conflict otherwise).
func (db *DB) UpdateCA(ctx context.Context, c pki.CA, from pki.CAStatus, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE pki_cas SET status = ?, certificate = ?, certificate_chain = ?, serial_number = ?,
			not_before = ?, not_after = ?, max_path_length = ?, parent_ca_id = ?, require_template_for_issuance = ?, updated_at = ?
			WHERE id = ? AND status = ? AND updated_at = ?`,
			string(c.Status), c.Certificate, c.Chain, c.SerialNumber, ts(c.NotBefore), ts(c.NotAfter), c.MaxPathLength,
			c.ParentCAID, c.RequireTemplate, ts(c.UpdatedAt), c.ID, string(from), ts(prev))
		if err != nil {
			return dbErr(err, "UpdateCA")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &errs.Error{Kind: errs.Conflict, Message: "CA changed"}
		}
		return tx.insertAudit(ctx, ev)
	})
}

// UpdateCASettings writes a CA's status and whether it requires templates
// with ev, provided it is still as read: its status from, its updated_at
// prev (errs.Conflict otherwise). It writes nothing else, so a change read
// before a renewal cannot bring back the certificate it replaced.
func (db *DB) UpdateCASettings(ctx context.Context, c pki.CA, from pki.CAStatus, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE pki_cas SET status = ?, require_template_for_issuance = ?, updated_at = ?
			WHERE id = ? AND status = ? AND updated_at = ?`, string(c.Status), c.RequireTemplate, ts(c.UpdatedAt), c.ID, string(from), ts(prev))
		if err != nil {
			return dbErr(err, "UpdateCASettings")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &errs.Error{Kind: errs.Conflict, Message: "CA changed"}
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteCA deletes a CA, its certificates and its templates with ev. The
// CA's row is locked first, as an issuance's transaction takes it (then
// the template's): deleting the templates first deadlocked with one.
func (db *DB) DeleteCA(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.lockForDelete(ctx, "pki_cas", id); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM pki_certificates WHERE ca_id = ?`, `DELETE FROM pki_certificate_templates WHERE ca_id = ?`} {
			if _, err := tx.exec(ctx, q, id); err != nil {
				return dbErr(err, "DeleteCA")
			}
		}
		res, err := tx.exec(ctx, `DELETE FROM pki_cas WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteCA")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteCA")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// CACRL returns a CA's stored CRL and revocation count.
func (db *DB) CACRL(ctx context.Context, caID string) (pki.CRL, error) {
	c := pki.CRL{CAID: caID}
	err := db.readRow(ctx, `SELECT crl, crl_number, crl_this_update, crl_next_update, crl_rev, revocation_rev FROM pki_cas WHERE id = ?`, caID).
		Scan(&c.DER, &c.Number, timeCol{&c.ThisUpdate}, timeCol{&c.NextUpdate}, &c.Rev, &c.CARev)
	return c, dbErr(err, "CACRL")
}

// SetCACRL stores a CA's CRL provided the stored one covers no more
// revocations and has a lower number.
func (db *DB) SetCACRL(ctx context.Context, c pki.CRL) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE pki_cas SET crl = ?, crl_number = ?, crl_this_update = ?, crl_next_update = ?, crl_rev = ?
			WHERE id = ? AND crl_rev <= ? AND crl_number < ?`, c.DER, c.Number, ts(c.ThisUpdate), ts(c.NextUpdate), c.Rev, c.CAID, c.Rev, c.Number)
		if err != nil {
			return dbErr(err, "SetCACRL")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &errs.Error{Kind: errs.Conflict, Message: "CRL changed"}
		}
		return nil
	})
}

const pkiCertCols = `id, project_id, ca_id, template_id, status, serial_number, friendly_name, common_name, alt_names, key_usages,
	extended_key_usages, not_before, not_after, revoked_at, revocation_reason, certificate, certificate_chain, private_key,
	created_at, updated_at`

// pkiCertListCols is pkiCertCols without the sealed private key, for lists
// (pages, the expiring list, the public CRL): only a bundle reads a key.
var pkiCertListCols = strings.Replace(pkiCertCols, "private_key", "NULL", 1)

// splitList reads a list stored joined by sep. Alternative names are
// joined by newlines (a URI may hold a comma; none holds a newline).
func splitList(s, sep string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, sep)
}

func scanCert(sc interface{ Scan(...any) error }) (pki.Certificate, error) {
	var c pki.Certificate
	var alt, ku, eku string
	err := sc.Scan(&c.ID, &c.ProjectID, &c.CAID, &c.TemplateID, &c.Status, &c.SerialNumber, &c.FriendlyName, &c.CommonName,
		&alt, &ku, &eku, timeCol{&c.NotBefore}, timeCol{&c.NotAfter}, optTimeCol{&c.RevokedAt}, &c.RevocationReason,
		&c.Certificate, &c.Chain, &c.SealedKey, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	c.AltNames, c.KeyUsages, c.ExtendedKeyUsages = splitList(alt, "\n"), splitList(ku, ","), splitList(eku, ",")
	return c, err
}

// CreateCertificate stores an issued certificate with ev, if its CA is
// still active (held FOR SHARE until the insert is in on PostgreSQL): an
// issuance that waited for a key-generation slot while the CA was disabled
// is refused (a 400), not stored and answered. What else it was checked
// against (b) must hold too: a bare-caId issuance needs the CA still not to
// require a template, one through a template needs the template unchanged
// (also held FOR SHARE); project.ErrStale otherwise, for the service to
// check the request again.
func (db *DB) CreateCertificate(ctx context.Context, c pki.Certificate, b pki.Basis, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.holdProject(ctx, c.ProjectID); err != nil {
			return err
		}
		if err := tx.caActive(ctx, "pki_cas", c.CAID); err != nil {
			return err
		}
		if b.BareCA {
			var required bool
			if err := tx.queryRow(ctx, `SELECT require_template_for_issuance FROM pki_cas WHERE id = ?`, c.CAID).Scan(&required); err != nil {
				return dbErr(err, "CA issuance rule")
			}
			if required {
				return project.ErrStale
			}
		}
		if c.TemplateID != "" {
			if err := tx.unchangedSince(ctx, "pki_certificate_templates", c.TemplateID, b.TemplateAt); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO pki_certificates (`+pkiCertCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.ProjectID, c.CAID, c.TemplateID, c.Status, c.SerialNumber, c.FriendlyName, c.CommonName,
			strings.Join(c.AltNames, "\n"), strings.Join(c.KeyUsages, ","), strings.Join(c.ExtendedKeyUsages, ","),
			ts(c.NotBefore), ts(c.NotAfter), tsp(c.RevokedAt), c.RevocationReason, c.Certificate, c.Chain, c.SealedKey,
			ts(c.CreatedAt), ts(c.UpdatedAt)); err != nil {
			return dbErr(err, "CreateCertificate")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// CertificateBySerial finds a certificate by serial number.
func (db *DB) CertificateBySerial(ctx context.Context, serial string) (pki.Certificate, error) {
	c, err := scanCert(db.readRow(ctx, `SELECT `+pkiCertCols+` FROM pki_certificates WHERE serial_number = ?`, serial))
	return c, dbErr(err, "CertificateBySerial")
}

func (db *DB) certList(ctx context.Context, op, query string, args ...any) ([]pki.Certificate, error) {
	rows, err := db.readq(ctx, query, args...)
	if err != nil {
		return nil, dbErr(err, op)
	}
	defer rows.Close()
	out := []pki.Certificate{}
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, dbErr(err, "scan certificate")
		}
		out = append(out, c)
	}
	return out, dbErr(rows.Err(), op)
}

// Certificates returns a page of a project's certificates, newest first, and the total.
func (db *DB) Certificates(ctx context.Context, projectID string, offset, limit int) ([]pki.Certificate, int, error) {
	var total int
	if err := db.readRow(ctx, `SELECT COUNT(*) FROM pki_certificates WHERE project_id = ?`, projectID).Scan(&total); err != nil {
		return nil, 0, dbErr(err, "count certificates")
	}
	out, err := db.certList(ctx, "Certificates", `SELECT `+pkiCertListCols+` FROM pki_certificates WHERE project_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, projectID, limit, offset)
	return out, total, err
}

// RevokedEntries lists a CA's revoked certificates that expire after
// expiredBefore: their serial, time and reason only, what a CRL entry holds.
// A CRL is signed again on every revocation, so reading whole rows (each
// with its certificate and chain), expired ones included, made each
// revocation cost more than the one before: 0.8 s and 225 MB at 40,000.
func (db *DB) RevokedEntries(ctx context.Context, caID string, expiredBefore time.Time) ([]pki.Revoked, error) {
	rows, err := db.readq(ctx, `SELECT serial_number, revoked_at, revocation_reason FROM pki_certificates
		WHERE ca_id = ? AND status = ? AND not_after > ? ORDER BY revoked_at, id`, caID, pki.CertRevoked, ts(expiredBefore))
	if err != nil {
		return nil, dbErr(err, "RevokedEntries")
	}
	defer rows.Close()
	var out []pki.Revoked
	for rows.Next() {
		var r pki.Revoked
		if err := rows.Scan(&r.SerialNumber, timeCol{&r.At}, &r.Reason); err != nil {
			return nil, dbErr(err, "scan revoked certificate")
		}
		out = append(out, r)
	}
	return out, dbErr(rows.Err(), "RevokedEntries")
}

// RevokeCertificate marks an active certificate revoked with ev.
func (db *DB) RevokeCertificate(ctx context.Context, id, caID string, at time.Time, reason int, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// The CA first, then its certificate, as deleting the CA or its
		// project takes them (the other way round deadlocked with both).
		res, err := tx.exec(ctx, `UPDATE pki_cas SET revocation_rev = revocation_rev + 1 WHERE id = ?`, caID)
		if err != nil {
			return dbErr(err, "count revocation")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "RevokeCertificate")
		}
		if res, err = tx.exec(ctx, `UPDATE pki_certificates SET status = ?, revoked_at = ?, revocation_reason = ?, updated_at = ?
			WHERE id = ? AND status = ?`, pki.CertRevoked, ts(at), reason, ts(at), id, pki.CertActive); err != nil {
			return dbErr(err, "RevokeCertificate")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &errs.Error{Kind: errs.Conflict, Message: "certificate revoked already"}
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteCertificate deletes a certificate's record with ev.
func (db *DB) DeleteCertificate(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM pki_certificates WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteCertificate")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteCertificate")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// ExpiringCertificates lists a project's active certificates expiring in [from, to], soonest first.
func (db *DB) ExpiringCertificates(ctx context.Context, projectID string, from, to time.Time, limit int) ([]pki.Certificate, error) {
	return db.certList(ctx, "ExpiringCertificates", `SELECT `+pkiCertListCols+` FROM pki_certificates
		WHERE project_id = ? AND status = ? AND not_after >= ? AND not_after <= ? ORDER BY not_after, id LIMIT ?`,
		projectID, pki.CertActive, ts(from), ts(to), limit)
}

const pkiTemplateCols = `id, project_id, ca_id, name, common_name, subject_alternative_name, ttl, key_usages, extended_key_usages,
	created_at, updated_at`

func scanTemplate(sc interface{ Scan(...any) error }) (pki.Template, error) {
	var t pki.Template
	var ku, eku string
	err := sc.Scan(&t.ID, &t.ProjectID, &t.CAID, &t.Name, &t.CommonName, &t.SubjectAlternativeName, &t.TTL, &ku, &eku,
		timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt})
	if err != nil {
		return t, err
	}
	t.KeyUsages, t.ExtendedKeyUsages = splitList(ku, ","), splitList(eku, ",")
	d, perr := pki.ParseTTL("ttl", t.TTL)
	if perr != nil {
		return t, errs.Internalf(perr, "template %s has a bad ttl", t.ID)
	}
	t.MaxTTL = d
	return t, nil
}

// CreateTemplate stores a template with ev; errs.Conflict on a taken name.
func (db *DB) CreateTemplate(ctx context.Context, t pki.Template, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.bounded(ctx, "projects", "pki_certificate_templates", "project_id", t.ProjectID, pki.MaxTemplates, pki.TooManyTemplates); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO pki_certificate_templates (`+pkiTemplateCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.ProjectID, t.CAID, t.Name, t.CommonName, t.SubjectAlternativeName, t.TTL, strings.Join(t.KeyUsages, ","),
			strings.Join(t.ExtendedKeyUsages, ","), ts(t.CreatedAt), ts(t.UpdatedAt)); err != nil {
			return dbErr(err, "CreateTemplate")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// Template finds a template by id.
func (db *DB) Template(ctx context.Context, id string) (pki.Template, error) {
	t, err := scanTemplate(db.readRow(ctx, `SELECT `+pkiTemplateCols+` FROM pki_certificate_templates WHERE id = ?`, id))
	return t, dbErr(err, "Template")
}

// Templates lists a project's templates by name.
func (db *DB) Templates(ctx context.Context, projectID string) ([]pki.Template, error) {
	rows, err := db.readq(ctx, `SELECT `+pkiTemplateCols+` FROM pki_certificate_templates WHERE project_id = ? ORDER BY name`, projectID)
	if err != nil {
		return nil, dbErr(err, "Templates")
	}
	defer rows.Close()
	out := []pki.Template{}
	for rows.Next() {
		t, err := scanTemplate(rows)
		if err != nil {
			return nil, dbErr(err, "scan template")
		}
		out = append(out, t)
	}
	return out, dbErr(rows.Err(), "Templates")
}

// UpdateTemplate writes a template with ev if it is still as read at prev
// (project.ErrStale otherwise); errs.Conflict on a taken name.
func (db *DB) UpdateTemplate(ctx context.Context, t pki.Template, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.holdProject(ctx, t.ProjectID); err != nil { // before the template: it may name another CA
			return err
		}
		res, err := tx.exec(ctx, `UPDATE pki_certificate_templates SET ca_id = ?, name = ?, common_name = ?, subject_alternative_name = ?,
			ttl = ?, key_usages = ?, extended_key_usages = ?, updated_at = ? WHERE id = ? AND updated_at = ?`, t.CAID, t.Name, t.CommonName,
			t.SubjectAlternativeName, t.TTL, strings.Join(t.KeyUsages, ","), strings.Join(t.ExtendedKeyUsages, ","), ts(t.UpdatedAt), t.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateTemplate"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteTemplate deletes a template with ev.
func (db *DB) DeleteTemplate(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM pki_certificate_templates WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteTemplate")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteTemplate")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// unchangedSince holds the row of table with id FOR SHARE on PostgreSQL
// until the transaction ends and reports project.ErrStale unless its
// updated_at is still at (also when it is gone): a write checked against
// the row as read at at commits before any change to it, or not at all.
func (tx *Tx) unchangedSince(ctx context.Context, table, id string, at time.Time) error {
	var n int
	err := tx.queryRow(ctx, `SELECT 1 FROM `+table+` WHERE id = ? AND updated_at = ?`+tx.db.forShare(), id, ts(at)).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return project.ErrStale
	}
	return dbErr(err, "unchanged since")
}

// caActive refuses (a 400) unless the CA of table (pki_cas or
// ssh_cas) with id is active, holding its row FOR SHARE on PostgreSQL until
// the transaction ends, so that a disable commits before or after what the
// transaction writes under the CA, never between its check and its write.
func (tx *Tx) caActive(ctx context.Context, table, id string) error {
	var status string
	err := tx.queryRow(ctx, `SELECT status FROM `+table+` WHERE id = ?`+tx.db.forShare(), id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) || err == nil && status != "active" {
		return errs.BadRequest("The certificate authority is disabled or deleted: nothing was issued")
	}
	return dbErr(err, "CA status")
}
