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

func (tx *Tx) insertDataKey(ctx context.Context, o keyring.Owner, wrapped []byte, rootKeyID string) error {
	_, err := tx.exec(ctx, `INSERT INTO data_keys (owner_type, owner_id, wrapped, root_key_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		o.Type, o.ID, wrapped, rootKeyID, ts(tx.Now), ts(tx.Now))
	return dbErr(err, "insert data key")
}

// RotateRootKey rewraps every data key in one transaction using rewrap, which
// receives all wrapped keys and returns their replacements.
func (db *DB) RotateRootKey(ctx context.Context, rewrap func([]keyring.WrappedKey) ([]keyring.WrappedKey, string, error)) (int, error) {
	n := 0
	err := db.Transact(ctx, func(tx *Tx) error {
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
