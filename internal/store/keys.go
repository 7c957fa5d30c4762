package store

import (
	"context"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
)

var _ keyring.Store = (*DB)(nil)

const qDataKey = `SELECT wrapped FROM data_keys WHERE owner_type = ? AND owner_id = ?`

// DataKey returns o's wrapped data key.
func (db *DB) DataKey(ctx context.Context, o keyring.Owner) ([]byte, error) {
	var b []byte
	err := db.readRow(ctx, qDataKey, o.Type, o.ID).Scan(&b)
	if err != nil {
		return nil, dbErr(err, "DataKey")
	}
	return b, nil
}

// CreateDataKey stores o's wrapped data key; errs.Conflict if one exists.
func (db *DB) CreateDataKey(ctx context.Context, o keyring.Owner, wrapped []byte, rootKeyID string) error {
	return db.Transact(ctx, func(tx *Tx) error { return tx.insertDataKey(ctx, o, wrapped, rootKeyID) })
}

// insertDataKey stores a data key wrapped under the root key rootKeyID,
// unless the stored keys are wrapped under another: a server started before
// `lockbox rotate-root-key` still holds the old root key, and a key it
// wrapped now would not open once servers start with the new one. The
// rotation locks the table (PostgreSQL), so an insert waits for it and
// then sees it.
func (tx *Tx) insertDataKey(ctx context.Context, o keyring.Owner, wrapped []byte, rootKeyID string) error {
	res, err := tx.exec(ctx, `INSERT INTO data_keys (owner_type, owner_id, wrapped, root_key_id, created_at, updated_at)
		SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM data_keys WHERE root_key_id <> ?)`,
		o.Type, o.ID, wrapped, rootKeyID, ts(tx.Now), ts(tx.Now), rootKeyID)
	if err != nil {
		return dbErr(err, "insert data key")
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		e := errs.Unavailablef("The root key was rotated since this server started: restart it with the new root key")
		e.Err = err
		return e
	}
	return nil
}

// RotateRootKey rewraps every data key in one transaction using rewrap, which
// receives all wrapped keys and returns their replacements.
func (db *DB) RotateRootKey(ctx context.Context, rewrap func([]keyring.WrappedKey) ([]keyring.WrappedKey, string, error)) (int, error) {
	n := 0
	err := db.Transact(ctx, func(tx *Tx) error {
		if db.dialect == Postgres {
			// No data key is added meanwhile (insertDataKey): one would stay
			// wrapped under the old key.
			if _, err := tx.exec(ctx, `LOCK TABLE data_keys IN EXCLUSIVE MODE`); err != nil {
				return dbErr(err, "lock data keys")
			}
		}
		rows, err := tx.query(ctx, `SELECT owner_type, owner_id, wrapped FROM data_keys ORDER BY owner_type, owner_id`)
		if err != nil {
			return dbErr(err, "list data keys")
		}
		var keys []keyring.WrappedKey
		for rows.Next() {
			var k keyring.WrappedKey
			if err := rows.Scan(&k.Owner.Type, &k.Owner.ID, &k.Wrapped); err != nil {
				rows.Close()
				return dbErr(err, "scan data key")
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbErr(err, "list data keys")
		}
		out, newID, err := rewrap(keys)
		if err != nil {
			return &errs.Error{Kind: errs.Invalid, Message: err.Error(), Err: err}
		}
		for _, k := range out {
			if _, err := tx.exec(ctx, `UPDATE data_keys SET wrapped = ?, root_key_id = ?, updated_at = ? WHERE owner_type = ? AND owner_id = ?`,
				k.Wrapped, newID, ts(tx.Now), k.Owner.Type, k.Owner.ID); err != nil {
				return dbErr(err, "update data key")
			}
		}
		n = len(out)
		return nil
	})
	return n, err
}
