package store

import (
	"context"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/pki"
)

// CertificateByID finds a certificate by id (without its sealed key).
func (db *DB) CertificateByID(ctx context.Context, id string) (pki.Certificate, error) {
	c, err := scanCert(db.readRow(ctx, `SELECT `+pkiCertListCols+` FROM pki_certificates WHERE id = ?`, id))
	return c, dbErr(err, "CertificateByID")
}

// RenewCA writes a CA's new certificate and archives its previous one.
func (db *DB) RenewCA(ctx context.Context, c pki.CA, from pki.CAStatus, prev pki.CACert, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE pki_cas SET certificate = ?, certificate_chain = ?, serial_number = ?, not_before = ?,
			not_after = ?, updated_at = ? WHERE id = ? AND status = ? AND serial_number = ?`,
			c.Certificate, c.Chain, c.SerialNumber, ts(c.NotBefore), ts(c.NotAfter), ts(c.UpdatedAt), c.ID, string(from), prev.SerialNumber)
		if err != nil {
			return dbErr(err, "RenewCA")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &errs.Error{Kind: errs.Conflict, Message: "CA changed"}
		}
		if _, err := tx.exec(ctx, `INSERT INTO pki_ca_certificates (ca_id, version, serial_number, certificate, certificate_chain,
			not_before, not_after, created_at)
			SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ?, ?, ?, ?, ? FROM pki_ca_certificates WHERE ca_id = ?`,
			c.ID, prev.SerialNumber, prev.Certificate, prev.Chain, ts(prev.NotBefore), ts(prev.NotAfter), ts(prev.CreatedAt), c.ID); err != nil {
			return dbErr(err, "RenewCA archive")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// CACertificates lists a CA's archived certificates, oldest first.
func (db *DB) CACertificates(ctx context.Context, caID string) ([]pki.CACert, error) {
	rows, err := db.readq(ctx, `SELECT ca_id, version, serial_number, certificate, certificate_chain, not_before, not_after, created_at
		FROM pki_ca_certificates WHERE ca_id = ? ORDER BY version`, caID)
	if err != nil {
		return nil, dbErr(err, "CACertificates")
	}
	defer rows.Close()
	out := []pki.CACert{}
	for rows.Next() {
		var c pki.CACert
		if err := rows.Scan(&c.CAID, &c.Version, &c.SerialNumber, &c.Certificate, &c.Chain, timeCol{&c.NotBefore},
			timeCol{&c.NotAfter}, timeCol{&c.CreatedAt}); err != nil {
			return nil, dbErr(err, "CACertificates")
		}
		out = append(out, c)
	}
	return out, dbErr(rows.Err(), "CACertificates")
}

const pkiCollectionCols = `id, project_id, name, description, created_at, updated_at`

func scanCollection(sc interface{ Scan(...any) error }) (pki.Collection, error) {
	var c pki.Collection
	err := sc.Scan(&c.ID, &c.ProjectID, &c.Name, &c.Description, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	return c, err
}

// CreateCollection stores a collection with ev.
func (db *DB) CreateCollection(ctx context.Context, c pki.Collection, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.bounded(ctx, "projects", "pki_collections", "project_id", c.ProjectID, pki.MaxCollections, pki.TooManyCollections); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO pki_collections (`+pkiCollectionCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
			c.ID, c.ProjectID, c.Name, c.Description, ts(c.CreatedAt), ts(c.UpdatedAt)); err != nil {
			return dbErr(err, "CreateCollection")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// Collection finds a collection by id.
func (db *DB) Collection(ctx context.Context, id string) (pki.Collection, error) {
	c, err := scanCollection(db.readRow(ctx, `SELECT `+pkiCollectionCols+` FROM pki_collections WHERE id = ?`, id))
	return c, dbErr(err, "Collection")
}

// Collections lists a project's collections, oldest first.
func (db *DB) Collections(ctx context.Context, projectID string) ([]pki.Collection, error) {
	rows, err := db.readq(ctx, `SELECT `+pkiCollectionCols+` FROM pki_collections WHERE project_id = ? ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, dbErr(err, "Collections")
	}
	defer rows.Close()
	out := []pki.Collection{}
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, dbErr(err, "Collections")
		}
		out = append(out, c)
	}
	return out, dbErr(rows.Err(), "Collections")
}

func (db *DB) count(ctx context.Context, op, query string, args ...any) (int, error) {
	var n int
	err := db.readRow(ctx, query, args...).Scan(&n)
	return n, dbErr(err, op)
}

// CountCollections counts a project's collections.
func (db *DB) CountCollections(ctx context.Context, projectID string) (int, error) {
	return db.count(ctx, "CountCollections", `SELECT COUNT(*) FROM pki_collections WHERE project_id = ?`, projectID)
}

// UpdateCollection writes a collection's name and description with ev.
func (db *DB) UpdateCollection(ctx context.Context, c pki.Collection, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE pki_collections SET name = ?, description = ?, updated_at = ? WHERE id = ?`,
			c.Name, c.Description, ts(c.UpdatedAt), c.ID)
		if err != nil {
			return dbErr(err, "UpdateCollection")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "UpdateCollection")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// deleteOne deletes the row of table with id, with ev; errs.NotFound when there is none.
func (db *DB) deleteOne(ctx context.Context, op, query, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, query, id)
		if err != nil {
			return dbErr(err, op)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, op)
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteCollection deletes a collection; its items and alerts go with it.
func (db *DB) DeleteCollection(ctx context.Context, id string, ev audit.Event) error {
	return db.deleteOne(ctx, "DeleteCollection", `DELETE FROM pki_collections WHERE id = ?`, id, ev)
}

// An item's name, serial and validity come from the CA or certificate it names.
const pkiItemSelect = `SELECT i.id, i.collection_id, COALESCE(i.ca_id, ''), COALESCE(i.cert_id, ''),
	COALESCE(ca.friendly_name, c.friendly_name, ''), COALESCE(ca.serial_number, c.serial_number, ''),
	COALESCE(ca.not_before, c.not_before), COALESCE(ca.not_after, c.not_after), i.created_at, i.updated_at
	FROM pki_collection_items i
	LEFT JOIN pki_cas ca ON ca.id = i.ca_id
	LEFT JOIN pki_certificates c ON c.id = i.cert_id`

func scanItem(sc interface{ Scan(...any) error }) (pki.CollectionItem, error) {
	var it pki.CollectionItem
	var caID, certID string
	err := sc.Scan(&it.ID, &it.CollectionID, &caID, &certID, &it.FriendlyName, &it.SerialNumber, timeCol{&it.NotBefore},
		timeCol{&it.NotAfter}, timeCol{&it.CreatedAt}, timeCol{&it.UpdatedAt})
	if caID != "" {
		it.Type, it.ItemID = pki.ItemCA, caID
	} else {
		it.Type, it.ItemID = pki.ItemCertificate, certID
	}
	return it, err
}

func (db *DB) itemList(ctx context.Context, op, query string, args ...any) ([]pki.CollectionItem, error) {
	rows, err := db.readq(ctx, query, args...)
	if err != nil {
		return nil, dbErr(err, op)
	}
	defer rows.Close()
	out := []pki.CollectionItem{}
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, dbErr(err, op)
		}
		out = append(out, it)
	}
	return out, dbErr(rows.Err(), op)
}

// AddCollectionItem stores an item with ev; errs.Conflict when the
// collection holds that CA or certificate already.
func (db *DB) AddCollectionItem(ctx context.Context, it pki.CollectionItem, ev audit.Event) error {
	var caID, certID any
	if it.Type == pki.ItemCA {
		caID = it.ItemID
	} else {
		certID = it.ItemID
	}
	return db.Transact(ctx, func(tx *Tx) error {
		// The project first: the item then references a CA or certificate.
		if err := tx.holdProjectOf(ctx, "pki_collections", it.CollectionID); err != nil {
			return err
		}
		if err := tx.bounded(ctx, "pki_collections", "pki_collection_items", "collection_id", it.CollectionID, pki.MaxItemsPerCollection, pki.TooManyItems); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO pki_collection_items (id, collection_id, ca_id, cert_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)`, it.ID, it.CollectionID, caID, certID, ts(it.CreatedAt), ts(it.UpdatedAt)); err != nil {
			return dbErr(err, "AddCollectionItem")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// CollectionItem finds an item by id.
func (db *DB) CollectionItem(ctx context.Context, id string) (pki.CollectionItem, error) {
	it, err := scanItem(db.readRow(ctx, pkiItemSelect+` WHERE i.id = ?`, id))
	return it, dbErr(err, "CollectionItem")
}

// CountCollectionItems counts a collection's items.
func (db *DB) CountCollectionItems(ctx context.Context, collectionID string) (int, error) {
	return db.count(ctx, "CountCollectionItems", `SELECT COUNT(*) FROM pki_collection_items WHERE collection_id = ?`, collectionID)
}

// RemoveCollectionItem deletes an item with ev.
func (db *DB) RemoveCollectionItem(ctx context.Context, id string, ev audit.Event) error {
	return db.deleteOne(ctx, "RemoveCollectionItem", `DELETE FROM pki_collection_items WHERE id = ?`, id, ev)
}

func itemTypeCond(typ string) string {
	switch typ {
	case pki.ItemCA:
		return ` AND i.ca_id IS NOT NULL`
	case pki.ItemCertificate:
		return ` AND i.cert_id IS NOT NULL`
	}
	return ""
}

// CollectionItems returns a page of a collection's items, oldest first, and their total.
func (db *DB) CollectionItems(ctx context.Context, collectionID, typ string, offset, limit int) ([]pki.CollectionItem, int, error) {
	cond := itemTypeCond(typ)
	total, err := db.count(ctx, "CollectionItems", `SELECT COUNT(*) FROM pki_collection_items i WHERE i.collection_id = ?`+cond, collectionID)
	if err != nil {
		return nil, 0, err
	}
	out, err := db.itemList(ctx, "CollectionItems", pkiItemSelect+` WHERE i.collection_id = ?`+cond+
		` ORDER BY i.created_at, i.id LIMIT ? OFFSET ?`, collectionID, limit, offset)
	return out, total, err
}

// ExpiringCollectionItems lists a collection's CAs and active certificates
// expiring in [from, to], soonest first.
func (db *DB) ExpiringCollectionItems(ctx context.Context, collectionID string, from, to time.Time, limit int) ([]pki.CollectionItem, error) {
	return db.itemList(ctx, "ExpiringCollectionItems", pkiItemSelect+`
		WHERE i.collection_id = ? AND ((ca.id IS NOT NULL AND ca.certificate <> '') OR c.status = ?)
		AND COALESCE(ca.not_after, c.not_after) >= ? AND COALESCE(ca.not_after, c.not_after) <= ?
		ORDER BY COALESCE(ca.not_after, c.not_after), i.id LIMIT ?`,
		collectionID, pki.CertActive, ts(from), ts(to), limit)
}

const pkiAlertCols = `a.id, p.org_id, a.project_id, a.collection_id, a.name, a.alert_before_days, a.recipient_emails, a.due_at,
	a.last_sent_at, a.created_at, a.updated_at`
const pkiAlertFrom = ` FROM pki_alerts a JOIN projects p ON p.id = a.project_id`

func scanAlert(sc interface{ Scan(...any) error }) (pki.Alert, error) {
	var a pki.Alert
	var emails string
	err := sc.Scan(&a.ID, &a.OrgID, &a.ProjectID, &a.CollectionID, &a.Name, &a.AlertBeforeDays, &emails, timeCol{&a.DueAt},
		optTimeCol{&a.LastSentAt}, timeCol{&a.CreatedAt}, timeCol{&a.UpdatedAt})
	a.Emails = splitList(emails, ",")
	return a, err
}

// CreateAlert stores an alert with ev.
func (db *DB) CreateAlert(ctx context.Context, a pki.Alert, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.bounded(ctx, "projects", "pki_alerts", "project_id", a.ProjectID, pki.MaxAlerts, pki.TooManyAlerts); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO pki_alerts (id, project_id, collection_id, name, alert_before_days, recipient_emails,
			due_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.ProjectID, a.CollectionID, a.Name, a.AlertBeforeDays, strings.Join(a.Emails, ","), ts(a.DueAt),
			ts(a.CreatedAt), ts(a.UpdatedAt)); err != nil {
			return dbErr(err, "CreateAlert")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// Alert finds an alert by id.
func (db *DB) Alert(ctx context.Context, id string) (pki.Alert, error) {
	a, err := scanAlert(db.readRow(ctx, `SELECT `+pkiAlertCols+pkiAlertFrom+` WHERE a.id = ?`, id))
	return a, dbErr(err, "Alert")
}

// Alerts lists a project's alerts, oldest first.
func (db *DB) Alerts(ctx context.Context, projectID string) ([]pki.Alert, error) {
	rows, err := db.readq(ctx, `SELECT `+pkiAlertCols+pkiAlertFrom+` WHERE a.project_id = ? ORDER BY a.created_at, a.id`, projectID)
	if err != nil {
		return nil, dbErr(err, "Alerts")
	}
	defer rows.Close()
	out := []pki.Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, dbErr(err, "Alerts")
		}
		out = append(out, a)
	}
	return out, dbErr(rows.Err(), "Alerts")
}

// CountAlerts counts a project's alerts.
func (db *DB) CountAlerts(ctx context.Context, projectID string) (int, error) {
	return db.count(ctx, "CountAlerts", `SELECT COUNT(*) FROM pki_alerts WHERE project_id = ?`, projectID)
}

// UpdateAlert writes an alert's name, collection, days and emails with ev.
func (db *DB) UpdateAlert(ctx context.Context, a pki.Alert, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.holdProject(ctx, a.ProjectID); err != nil { // before the alert: it may name another collection
			return err
		}
		res, err := tx.exec(ctx, `UPDATE pki_alerts SET name = ?, collection_id = ?, alert_before_days = ?, recipient_emails = ?,
			updated_at = ? WHERE id = ?`, a.Name, a.CollectionID, a.AlertBeforeDays, strings.Join(a.Emails, ","), ts(a.UpdatedAt), a.ID)
		if err != nil {
			return dbErr(err, "UpdateAlert")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "UpdateAlert")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteAlert deletes an alert with ev.
func (db *DB) DeleteAlert(ctx context.Context, id string, ev audit.Event) error {
	return db.deleteOne(ctx, "DeleteAlert", `DELETE FROM pki_alerts WHERE id = ?`, id, ev)
}

// NextAlertDue is the earliest due time of any alert (zero: none).
func (db *DB) NextAlertDue(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := db.readRow(ctx, `SELECT MIN(due_at) FROM pki_alerts`).Scan(timeCol{&t})
	return t, dbErr(err, "NextAlertDue")
}

// ClaimDueAlerts claims up to limit due alerts, moving each one's due time to until.
func (db *DB) ClaimDueAlerts(ctx context.Context, now, until time.Time, limit int) ([]pki.Alert, error) {
	var out []pki.Alert
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		out = nil
		rows, err := tx.query(ctx, `SELECT id FROM pki_alerts WHERE due_at <= ? ORDER BY due_at, id LIMIT ?`+db.skipLocked(), ts(now), limit)
		if err != nil {
			return dbErr(err, "ClaimDueAlerts")
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return dbErr(err, "ClaimDueAlerts")
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbErr(err, "ClaimDueAlerts")
		}
		for _, id := range ids {
			// The condition again: a row another node claimed meanwhile is skipped.
			res, err := tx.exec(ctx, `UPDATE pki_alerts SET due_at = ? WHERE id = ? AND due_at <= ?`, ts(until), id, ts(now))
			if err != nil {
				return dbErr(err, "ClaimDueAlerts")
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			a, err := scanAlert(tx.queryRow(ctx, `SELECT `+pkiAlertCols+pkiAlertFrom+` WHERE a.id = ?`, id))
			if err != nil {
				return dbErr(err, "ClaimDueAlerts")
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// AlertSent records a claimed alert's outcome with ev.
func (db *DB) AlertSent(ctx context.Context, id string, at time.Time, sent bool, retry *time.Time, ev audit.Event) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		if sent {
			if _, err := tx.exec(ctx, `UPDATE pki_alerts SET last_sent_at = ? WHERE id = ?`, ts(at), id); err != nil {
				return dbErr(err, "AlertSent")
			}
		}
		if retry != nil {
			if _, err := tx.exec(ctx, `UPDATE pki_alerts SET due_at = ? WHERE id = ?`, ts(*retry), id); err != nil {
				return dbErr(err, "AlertSent")
			}
		}
		return tx.insertAudit(ctx, ev)
	})
}
