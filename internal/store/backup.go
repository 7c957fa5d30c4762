package store

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"modernc.org/sqlite"

	"github.com/lockbox-dev/lockbox/internal/durable"
	"github.com/lockbox-dev/lockbox/internal/keyring"
)

// BackupInfo describes a checked SQLite database file.
type BackupInfo struct {
	Size          int64                // bytes
	SchemaVersion int64                // the newest migration applied to it
	DataKeys      []keyring.WrappedKey // every data key, wrapped by the root key
}

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// backuper is the online backup API of modernc.org/sqlite's connections.
type backuper interface {
	NewBackup(dstURI string) (*sqlite.Backup, error)
}

// BackupSQLite writes a consistent snapshot of the SQLite database in dir to
// out, a new file with mode 0600, while servers go on reading and writing the
// database. It copies the pages with SQLite's online backup API in a single
// step, that is in one read transaction: in WAL mode that blocks no writer,
// and the copy holds exactly the transactions committed before it began. The
// copy is checked as RestoreSQLite checks a backup before it appears at out;
// an existing out is never overwritten. The root key is not copied.
func BackupSQLite(ctx context.Context, dir, out string) (info BackupInfo, err error) {
	src := filepath.Join(dir, SQLiteFile)
	if fi, err := os.Stat(src); err != nil || !fi.Mode().IsRegular() {
		return info, fmt.Errorf("no lockbox database at %s", src)
	}
	// The snapshot is written beside out, where SQLite reopens it by name
	// (and its -wal or -journal): another user who may write that directory
	// could swap the file for a link of theirs, and read every row, or plant
	// a -wal that SQLite replays into the copy. A sticky directory (/tmp)
	// keeps others from replacing or removing our files.
	if fi, err := os.Stat(filepath.Dir(out)); err != nil {
		return info, fmt.Errorf("backup directory: %w", err)
	} else if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return info, fmt.Errorf("%s is writable by other users (mode %04o) and not sticky: chmod go-w it (or +t), or back up into a directory of your own", filepath.Dir(out), fi.Mode().Perm())
	}
	// Reserve out, so that nothing else is overwritten; the snapshot is
	// written beside it and renamed over the reservation once checked.
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return info, fmt.Errorf("%s exists: refusing to overwrite it", out)
	}
	if err != nil {
		return info, fmt.Errorf("create backup file: %w", err)
	}
	f.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*") // mode 0600
	if err != nil {
		os.Remove(out)
		return info, fmt.Errorf("create backup file: %w", err)
	}
	tmp.Close()
	defer func() {
		removeSQLiteFiles(tmp.Name())
		if err != nil {
			os.Remove(out)
		}
	}()
	if err := copySQLite(ctx, src, tmp.Name()); err != nil {
		return info, err
	}
	if err := syncFile(tmp.Name()); err != nil {
		return info, err
	}
	if info, err = InspectSQLite(ctx, tmp.Name()); err != nil {
		return info, fmt.Errorf("the copy does not check out: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return info, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return info, fmt.Errorf("rename backup file: %w", err)
	}
	return info, durable.SyncDir(filepath.Dir(out))
}

// copySQLite copies the database at src into the empty file dst in one
// backup step and leaves dst in rollback-journal mode, so that it is one
// self-contained file.
func copySQLite(ctx context.Context, src, dst string) error {
	srcURI, err := sqliteURI(src, "mode=rw&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return err
	}
	dstURI, err := sqliteURI(dst, "")
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", srcURI)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		bc, ok := dc.(backuper)
		if !ok {
			return errors.New("the SQLite driver has no backup API")
		}
		b, err := bc.NewBackup(dstURI)
		if err != nil {
			return fmt.Errorf("start backup: %w", err)
		}
		// One step of all pages: several steps would release the read
		// transaction in between and restart on every concurrent write.
		if _, err := b.Step(-1); err != nil {
			b.Finish()
			return fmt.Errorf("backup: %w", err)
		}
		cc, err := b.Commit() // the copy's connection
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		defer cc.Close()
		// The copy's header says WAL, as the source's does; make it a
		// single file that opens without -wal and -shm beside it.
		ex, ok := cc.(driver.ExecerContext)
		if !ok {
			return errors.New("the SQLite driver cannot execute on the backup")
		}
		if _, err := ex.ExecContext(ctx, "PRAGMA journal_mode=DELETE", nil); err != nil {
			return fmt.Errorf("backup journal mode: %w", err)
		}
		return nil
	})
}

// InspectSQLite checks that path is a sound lockbox SQLite database (its
// header, PRAGMA integrity_check, the migrations and data-key tables) and
// reads its schema version and wrapped data keys. It opens path for writing,
// which SQLite needs to read a WAL-mode file, but changes nothing in it.
func InspectSQLite(ctx context.Context, path string) (BackupInfo, error) {
	var info BackupInfo
	if err := checkMagic(path); err != nil {
		return info, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return info, err
	}
	info.Size = fi.Size()
	uri, err := sqliteURI(path, "mode=rw&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return info, err
	}
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return info, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return info, fmt.Errorf("%s is not a readable SQLite database: %w", path, err)
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return info, err
		}
		if s != "ok" && len(problems) < 3 {
			problems = append(problems, s)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return info, fmt.Errorf("%s is damaged: %w", path, err)
	}
	if len(problems) > 0 {
		return info, fmt.Errorf("%s is damaged (integrity_check: %s)", path, strings.Join(problems, "; "))
	}
	for _, table := range []string{"goose_db_version", "data_keys"} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil {
			return info, err
		}
		if n == 0 {
			return info, fmt.Errorf("%s is not a lockbox database (it has no %s table)", path, table)
		}
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version_id) FROM goose_db_version`).Scan(&v); err != nil {
		return info, err
	}
	if !v.Valid || v.Int64 < 1 {
		return info, fmt.Errorf("%s is not a lockbox database (no migration applied)", path)
	}
	info.SchemaVersion = v.Int64
	rows, err = db.QueryContext(ctx, `SELECT owner_type, owner_id, wrapped FROM data_keys ORDER BY owner_type, owner_id`)
	if err != nil {
		return info, err
	}
	defer rows.Close()
	for rows.Next() {
		var k keyring.WrappedKey
		if err := rows.Scan(&k.Owner.Type, &k.Owner.ID, &k.Wrapped); err != nil {
			return info, err
		}
		info.DataKeys = append(info.DataKeys, k)
	}
	return info, rows.Err()
}

// RestoreSQLite installs the backup file from as the database of dir, which
// must be missing (it is created with mode 0700) or empty. The backup is
// copied into dir (mode 0600), checked there with InspectSQLite and then by
// check, and renamed to its place only if both pass; on failure dir is left
// as it was found. A backup newer than this build's migrations is refused.
func RestoreSQLite(ctx context.Context, from, dir string, check func(BackupInfo) error) (info BackupInfo, err error) {
	if fi, err := os.Stat(from); err != nil {
		return info, fmt.Errorf("backup file: %w", err)
	} else if !fi.Mode().IsRegular() {
		return info, fmt.Errorf("%s is not a regular file", from)
	}
	if err := checkMagic(from); err != nil {
		return info, err
	}
	entries, err := os.ReadDir(dir)
	created := errors.Is(err, fs.ErrNotExist)
	switch {
	case created:
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return info, fmt.Errorf("create data dir: %w", err)
		}
	case err != nil:
		return info, fmt.Errorf("data dir: %w", err)
	case len(entries) > 0:
		return info, fmt.Errorf("data dir %s is not empty: restore into a new or empty directory", dir)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o022 != 0 {
		// Another user could replace the database, or plant its -wal file.
		return info, fmt.Errorf("data dir %s is writable by other users (mode %04o): chmod go-w it, or restore into a new directory", dir, fi.Mode().Perm())
	} else if err == nil && !ownDir(fi) {
		// Its owner can chmod it and do the same.
		return info, fmt.Errorf("data dir %s belongs to another user: restore into a directory of your own", dir)
	}
	tmp, err := os.CreateTemp(dir, "."+SQLiteFile+".restore-*") // mode 0600
	if err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	defer func() {
		removeSQLiteFiles(tmp.Name())
		if err != nil && created {
			os.Remove(dir) // only if still empty
		}
	}()
	if err := copyFile(tmp, from); err != nil {
		return info, err
	}
	if info, err = InspectSQLite(ctx, tmp.Name()); err != nil {
		return info, err
	}
	newest, err := newestMigration()
	if err != nil {
		return info, err
	}
	if info.SchemaVersion > newest {
		return info, fmt.Errorf("the backup has schema version %d, newer than this lockbox's %d: restore it with the version that made it", info.SchemaVersion, newest)
	}
	if check != nil {
		if err := check(info); err != nil {
			return info, err
		}
	}
	if err := ctx.Err(); err != nil {
		return info, err
	}
	dst := filepath.Join(dir, SQLiteFile)
	// Link, unlike rename, fails if a database appeared in the meantime;
	// rename where the file system has no hard links.
	if err := os.Link(tmp.Name(), dst); errors.Is(err, fs.ErrExist) {
		return info, fmt.Errorf("restore: %s appeared meanwhile", dst)
	} else if err != nil {
		if err := os.Rename(tmp.Name(), dst); err != nil {
			return info, fmt.Errorf("restore: %w", err)
		}
	}
	return info, durable.SyncDir(dir)
}

// copyFile copies from into f, syncs and closes f.
func copyFile(f *os.File, from string) error {
	src, err := os.Open(from)
	if err != nil {
		f.Close()
		return fmt.Errorf("backup file: %w", err)
	}
	defer src.Close()
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return fmt.Errorf("copy backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("copy backup: %w", err)
	}
	return f.Close()
}

// newestMigration is the version of this build's newest SQLite migration.
func newestMigration() (int64, error) {
	entries, err := fs.ReadDir(migrations, "migrations/"+string(SQLite))
	if err != nil {
		return 0, err
	}
	var newest int64
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migration %s: no version number", e.Name())
		}
		newest = max(newest, v)
	}
	return newest, nil
}

// checkMagic reports an error unless path starts like a SQLite database.
func checkMagic(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(f, b); err != nil || !bytes.Equal(b, []byte(sqliteMagic)) {
		return fmt.Errorf("%s is not a SQLite database", path)
	}
	return nil
}

// sqliteURI names the file at path as a URI the SQLite driver opens, with
// query (already encoded) appended. SQLite decodes %XX and ends the path at
// '?' or '#', so those are escaped.
func sqliteURI(path, query string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(abs)
	if query != "" {
		u += "?" + query
	}
	return u, nil
}

// removeSQLiteFiles removes a database file and the journals SQLite may
// have left beside it.
func removeSQLiteFiles(path string) {
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ownDir reports whether fi, a directory, belongs to the user running this.
func ownDir(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Getuid()
}
