package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/config"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// errPostgresBackup answers backup and restore on PostgreSQL.
var errPostgresBackup = &exitError{2, errors.New("LOCKBOX_DATABASE_URL is set: backup and restore copy the embedded SQLite database; " +
	"back up PostgreSQL with pg_dump -Fc and pg_restore, and keep LOCKBOX_ROOT_KEY apart from the dump (see docs/operations.md)")}

// sqliteConfig loads the settings as "lockbox server" does, with dataDir (a
// flag) overriding LOCKBOX_DATA_DIR when set, and refuses PostgreSQL.
func sqliteConfig(getenv func(string) string, dataDir string) (config.Config, error) {
	cfg, err := config.Load(getenv, nil, os.ReadFile)
	if cfg.Postgres() {
		return cfg, errPostgresBackup
	}
	if err != nil {
		return cfg, &exitError{2, fmt.Errorf("bad configuration: %s", oneLine(err))}
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	return cfg, nil
}

func newBackupCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var out, dataDir string
	cmd := &cobra.Command{
		Use:   "backup --out FILE [--data-dir DIR]",
		Short: "Copy the SQLite database to a file while servers run",
		Long: `Write a consistent snapshot of the embedded SQLite database to FILE while
servers go on serving reads and writes. The copy is made in one read
transaction, which does not block the server's writer, and holds every write
committed before the backup began. FILE is created with mode 0600 and is
checked (integrity_check) before it appears; an existing FILE is never
overwritten. Run it as the user that runs the server.

The data dir is found as "lockbox server" finds it: --data-dir, else
LOCKBOX_DATA_DIR, else ./lockbox-data.

The backup does NOT contain the root key: without it the backup cannot be
decrypted, so a stolen backup is useless, and so is a backup whose key is lost.
Keep the root key (the data dir's root.key, or LOCKBOX_ROOT_KEY) safe and
somewhere else than the backups; "lockbox restore" asks for it.

On PostgreSQL (LOCKBOX_DATABASE_URL) use pg_dump -Fc instead: see
docs/operations.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return &exitError{2, errors.New("--out FILE is required")}
			}
			cfg, err := sqliteConfig(getenv, dataDir)
			if err != nil {
				return err
			}
			info, err := store.BackupSQLite(cmd.Context(), cfg.DataDir, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "backed up %s to %s (%d bytes, schema version %d, %d data keys)\n",
				filepath.Join(cfg.DataDir, store.SQLiteFile), out, info.Size, info.SchemaVersion, len(info.DataKeys))
			key := "LOCKBOX_ROOT_KEY"
			if cfg.RootKey == "" {
				key = filepath.Join(cfg.DataDir, keyring.RootKeyFile)
			}
			fmt.Fprintf(stderr, "lockbox: the backup does not hold the root key: keep %s safe, apart from the backup; restoring needs it\n", key)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "file to write the backup to (must not exist)")
	f.StringVar(&dataDir, "data-dir", "", "data dir of the database (default $LOCKBOX_DATA_DIR or ./lockbox-data)")
	return cmd
}

func newRestoreCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var from, dataDir, keyFile string
	cmd := &cobra.Command{
		Use:   "restore --from FILE [--data-dir DIR] [--root-key-file KEYFILE]",
		Short: "Restore a backup into a new data dir",
		Long: `Restore a backup made by "lockbox backup" into DIR (--data-dir, else
LOCKBOX_DATA_DIR, else ./lockbox-data), which must be missing or empty: DIR is
created with mode 0700 and its database with mode 0600. The backup is checked
first: a SQLite database that passes integrity_check, made by lockbox (it has
the migrations table) and by this version or an older one.

The backup holds no root key; give the one its server used, either as
  --root-key-file KEYFILE  a copy of that server's root.key: checked, then
                           written to DIR/root.key (mode 0600), where
                           "lockbox server --data-dir DIR" finds it; or
  LOCKBOX_ROOT_KEY         (environment) the key the server was started with:
                           checked; start servers on DIR with it too.
If the key does not open every data key in the backup, nothing is restored.
With neither, the database is restored unchecked, and the server refuses to
start until it is given the right key.

On PostgreSQL (LOCKBOX_DATABASE_URL) use pg_restore instead: see
docs/operations.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return &exitError{2, errors.New("--from FILE is required")}
			}
			cfg, err := sqliteConfig(getenv, dataDir)
			if err != nil {
				return err
			}
			root := cfg.RootKeyBytes()
			if keyFile != "" {
				if root != nil {
					return &exitError{2, errors.New("give the root key once: --root-key-file or LOCKBOX_ROOT_KEY, not both")}
				}
				if root, err = keyring.ReadRootKeyFile(keyFile); err != nil {
					return &exitError{2, err}
				}
			}
			check := func(info store.BackupInfo) error {
				if root == nil {
					return nil
				}
				if err := keyring.CheckRootKey(root, info.DataKeys); err != nil {
					return fmt.Errorf("wrong root key, nothing restored: %w", err)
				}
				return nil
			}
			info, err := store.RestoreSQLite(cmd.Context(), from, cfg.DataDir, check)
			if err != nil {
				return err
			}
			if keyFile != "" {
				if err := keyring.WriteRootKeyFile(cfg.DataDir, root); err != nil {
					// Leave the dir empty, so that restore can run again.
					os.Remove(filepath.Join(cfg.DataDir, store.SQLiteFile))
					return fmt.Errorf("write root key file, nothing restored: %w", err)
				}
			}
			fmt.Fprintf(stdout, "restored %s into %s (schema version %d, %d data keys)\n", from, cfg.DataDir, info.SchemaVersion, len(info.DataKeys))
			switch {
			case keyFile != "":
				fmt.Fprintf(stdout, "the root key opens every data key; it is in %s\n", filepath.Join(cfg.DataDir, keyring.RootKeyFile))
			case root != nil:
				fmt.Fprintln(stdout, "LOCKBOX_ROOT_KEY opens every data key; start servers on this data dir with it")
			default:
				fmt.Fprintf(stderr, "lockbox: no root key given, so none was checked: start the server with the backed-up server's LOCKBOX_ROOT_KEY, or copy its root.key into %s first\n", cfg.DataDir)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "backup file made by lockbox backup")
	f.StringVar(&dataDir, "data-dir", "", "new or empty data dir to restore into (default $LOCKBOX_DATA_DIR or ./lockbox-data)")
	f.StringVar(&keyFile, "root-key-file", "", "the backed-up server's root.key, checked and copied into the data dir")
	return cmd
}
