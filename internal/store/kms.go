package store

import (
	"context"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/kms"
)

var _ kms.Store = (*DB)(nil)

const kmsKeyCols = `id, org_id, project_id, name, description, key_usage, algorithm, is_disabled, version, created_at, updated_at`

func scanKMSKey(sc interface{ Scan(...any) error }) (kms.Key, error) {
	var k kms.Key
	var usage, alg string
	err := sc.Scan(&k.ID, &k.OrgID, &k.ProjectID, &k.Name, &k.Description, &usage, &alg, &k.Disabled, &k.Version,
		timeCol{&k.CreatedAt}, timeCol{&k.UpdatedAt})
	k.Usage, k.Algorithm = kms.Usage(usage), kms.Algorithm(alg)
	return k, err
}

// CreateKMSKey stores a key and its first version with ev, unless the
// project holds kms.MaxKeysPerProject keys already: counted under a lock of
// the project's row, so that concurrent creates at the bound see each
// other (12 at once took a project of 999 keys to 1,004).
func (db *DB) CreateKMSKey(ctx context.Context, k kms.Key, v kms.SealedVersion, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		n, err := tx.countUnder(ctx, "projects", "kms_keys", "project_id", k.ProjectID)
		if err != nil {
			return err
		}
		if n >= kms.MaxKeysPerProject {
			return errs.BadRequest("The project has %d KMS keys, the most it may have; delete one first", n)
		}
		if _, err := tx.exec(ctx, `INSERT INTO kms_keys (`+kmsKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.OrgID, k.ProjectID, k.Name, k.Description, string(k.Usage), string(k.Algorithm), k.Disabled, k.Version,
			ts(k.CreatedAt), ts(k.UpdatedAt)); err != nil {
			return dbErr(err, "CreateKMSKey")
		}
		if err := tx.insertKMSVersion(ctx, v); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

func (tx *Tx) insertKMSVersion(ctx context.Context, v kms.SealedVersion) error {
	_, err := tx.exec(ctx, `INSERT INTO kms_key_versions (key_id, version, material, created_at) VALUES (?, ?, ?, ?)`,
		v.KeyID, v.Version, v.Material, ts(v.CreatedAt))
	return dbErr(err, "insert KMS key version")
}

// KMSKey finds a key by id.
func (db *DB) KMSKey(ctx context.Context, id string) (kms.Key, error) {
	k, err := scanKMSKey(db.readRow(ctx, `SELECT `+kmsKeyCols+` FROM kms_keys WHERE id = ?`, id))
	return k, dbErr(err, "KMSKey")
}

// KMSKeyByName finds a project's key by name.
func (db *DB) KMSKeyByName(ctx context.Context, projectID, name string) (kms.Key, error) {
	k, err := scanKMSKey(db.readRow(ctx, `SELECT `+kmsKeyCols+` FROM kms_keys WHERE project_id = ? AND name = ?`, projectID, name))
	return k, dbErr(err, "KMSKeyByName")
}

// likePattern makes a LIKE pattern matching s anywhere, its wildcards escaped.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// KMSKeys returns a page of a project's keys by name, and the number matching.
func (db *DB) KMSKeys(ctx context.Context, projectID string, o kms.ListOptions) ([]kms.Key, int, error) {
	where := ` FROM kms_keys WHERE project_id = ?`
	args := []any{projectID}
	if o.Search != "" {
		where += ` AND LOWER(name) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(o.Search))
	}
	var total int
	if err := db.readRow(ctx, `SELECT COUNT(*)`+where, args...).Scan(&total); err != nil {
		return nil, 0, dbErr(err, "count KMS keys")
	}
	order := " ORDER BY name ASC, id ASC"
	if o.Descending {
		order = " ORDER BY name DESC, id DESC"
	}
	rows, err := db.readq(ctx, `SELECT `+kmsKeyCols+where+order+` LIMIT ? OFFSET ?`, append(args, o.Limit, o.Offset)...)
	if err != nil {
		return nil, 0, dbErr(err, "KMSKeys")
	}
	defer rows.Close()
	out := []kms.Key{}
	for rows.Next() {
		k, err := scanKMSKey(rows)
		if err != nil {
			return nil, 0, dbErr(err, "scan KMS key")
		}
		out = append(out, k)
	}
	return out, total, dbErr(rows.Err(), "KMSKeys")
}

// UpdateKMSKey writes a key's name, description and disabled flag with ev
// if the key is still as read at prev (project.ErrStale otherwise).
func (db *DB) UpdateKMSKey(ctx context.Context, k kms.Key, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE kms_keys SET name = ?, description = ?, is_disabled = ?, updated_at = ? WHERE id = ? AND updated_at = ?`,
			k.Name, k.Description, k.Disabled, ts(k.UpdatedAt), k.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateKMSKey"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteKMSKey deletes a key and its versions' material with ev.
func (db *DB) DeleteKMSKey(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// The key before its versions, as deleting its project takes them.
		if err := tx.lockForDelete(ctx, "kms_keys", id); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM kms_key_versions WHERE key_id = ?`, id); err != nil {
			return dbErr(err, "delete KMS key versions")
		}
		res, err := tx.exec(ctx, `DELETE FROM kms_keys WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteKMSKey")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteKMSKey")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// RetireKMSKeyVersion deletes one version's material, provided it is not
// the key's newest; NotFound when the key has no such version (or never
// had, or it is retired already).
func (db *DB) RetireKMSKeyVersion(ctx context.Context, keyID string, version int, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM kms_key_versions WHERE key_id = ? AND version = ?
			AND version < (SELECT version FROM kms_keys WHERE id = ?)`, keyID, version, keyID)
		if err != nil {
			return dbErr(err, "RetireKMSKeyVersion")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "RetireKMSKeyVersion")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// KMSKeyVersion reads one version's sealed material.
func (db *DB) KMSKeyVersion(ctx context.Context, keyID string, version int) (kms.SealedVersion, error) {
	v := kms.SealedVersion{KeyID: keyID, Version: version}
	err := db.readRow(ctx, `SELECT material, created_at FROM kms_key_versions WHERE key_id = ? AND version = ?`, keyID, version).
		Scan(&v.Material, timeCol{&v.CreatedAt})
	return v, dbErr(err, "KMSKeyVersion")
}

// AddKMSKeyVersion makes v its key's newest version if the key is still at
// the version before it; errs.Conflict otherwise, NotFound with no key.
func (db *DB) AddKMSKeyVersion(ctx context.Context, v kms.SealedVersion, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE kms_keys SET version = ?, updated_at = ? WHERE id = ? AND version = ?`,
			v.Version, ts(v.CreatedAt), v.KeyID, v.Version-1)
		if err != nil {
			return dbErr(err, "AddKMSKeyVersion")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := tx.queryRow(ctx, `SELECT 1 FROM kms_keys WHERE id = ?`, v.KeyID).Scan(&one); err != nil {
				return dbErr(err, "AddKMSKeyVersion")
			}
			return errs.Conflictf("The key was rotated concurrently; try again")
		}
		if err := tx.insertKMSVersion(ctx, v); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}
