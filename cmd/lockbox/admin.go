package main

import (
	cryptorand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/config"
	"github.com/lockbox-dev/lockbox/internal/keyring"
)

func (c *cli) newBootstrapCmd() *cobra.Command {
	var email, password, org string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "bootstrap --email EMAIL --password PASSWORD --organization NAME",
		Short: "Set up a fresh instance and print the admin identity's token",
		Long: `Set up a fresh instance: the admin user, the organization and an admin machine
identity, whose token is printed (the whole answer with --output json). Waits
up to --wait for a server that is still starting.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if password == "" {
				password = c.getenv("LOCKBOX_BOOTSTRAP_PASSWORD")
			}
			if email == "" || password == "" || org == "" {
				return errors.New("--email, --password (or LOCKBOX_BOOTSTRAP_PASSWORD) and --organization are required")
			}
			cl := client.New(c.domainFor(nil), "")
			deadline := time.Now().Add(wait)
			var res client.BootstrapResponse
			var err error
			for {
				res, err = cl.Bootstrap(cmd.Context(), email, password, org)
				var ae *client.APIError
				if err == nil || errors.As(err, &ae) || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond) // not answering yet: starting up
			}
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.print(res, nil, nil)
			}
			_, err = fmt.Fprintln(c.stdout, res.Identity.Credentials.Token)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&email, "email", "", "admin user's email")
	f.StringVar(&password, "password", "", "admin user's password")
	f.StringVar(&org, "organization", "", "organization name")
	f.DurationVar(&wait, "wait", 10*time.Second, "how long to wait for the server to answer")
	return cmd
}

func newRotateRootKeyCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-root-key",
		Short: "Re-wrap every data key under a new root key",
		Long: `Re-wrap every data key under a new root key, in one transaction.

With a generated root key file (no LOCKBOX_ROOT_KEY), a new key is generated and
root.key is replaced after the database commits. With LOCKBOX_ROOT_KEY, the new key
must be given in LOCKBOX_NEW_ROOT_KEY; afterwards start servers with it.
Restart every server right after: a running server still holds the old root
key. It keeps serving what it has already opened, but cannot open a data key
it has not loaded yet, and it refuses (503) to make new ones (organizations,
projects) until it is restarted with the new key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(getenv, nil, os.ReadFile)
			if err != nil {
				return &exitError{2, fmt.Errorf("bad configuration: %s", oneLine(err))}
			}
			log := slog.New(slog.NewJSONHandler(stderr, nil))
			oldRoot := cfg.RootKeyBytes()
			fileMode := oldRoot == nil
			if fileMode {
				oldRoot, _, err = keyring.LoadOrCreateRootKey(cfg.DataDir)
				if err != nil {
					return &exitError{2, err}
				}
			}
			var newRoot []byte
			if v := strings.TrimSpace(getenv("LOCKBOX_NEW_ROOT_KEY")); v != "" {
				newRoot, err = base64.StdEncoding.DecodeString(v)
				if err != nil || len(newRoot) != keyring.KeySize {
					return &exitError{2, errors.New("LOCKBOX_NEW_ROOT_KEY: want the base64 encoding of exactly 32 bytes")}
				}
			} else if fileMode {
				newRoot = make([]byte, keyring.KeySize)
				if _, err := randRead(newRoot); err != nil {
					return err
				}
			} else {
				return &exitError{2, errors.New("LOCKBOX_NEW_ROOT_KEY is required when LOCKBOX_ROOT_KEY is set")}
			}
			db, _, err := openDeps(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer db.Close()
			pending := filepath.Join(cfg.DataDir, keyring.RootKeyFile+".new")
			if fileMode {
				// Keep the new key on disk, synced, before the database
				// depends on it: a crash after the commit must not leave an
				// empty file and a database wrapped under a key kept nowhere.
				if err := writeFileAtomic(pending, 0o600, writeBytes([]byte(base64.StdEncoding.EncodeToString(newRoot)+"\n"))); err != nil {
					return err
				}
			}
			n, err := db.RotateRootKey(cmd.Context(), func(keys []keyring.WrappedKey) ([]keyring.WrappedKey, string, error) {
				return keyring.Rewrap(keys, oldRoot, newRoot)
			})
			if err != nil {
				os.Remove(pending)
				return err
			}
			if fileMode {
				if err := keyring.WriteRootKeyFile(cfg.DataDir, newRoot); err != nil {
					return fmt.Errorf("database rotated, but writing root.key failed (the new key is in %s): %w", pending, err)
				}
				os.Remove(pending)
			}
			fmt.Fprintf(stdout, "re-wrapped %d data keys under the new root key\n", n)
			return nil
		},
	}
}

func randRead(b []byte) (int, error) { return cryptorand.Read(b) }
