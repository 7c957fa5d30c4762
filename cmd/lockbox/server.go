package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/app"
	"github.com/lockbox-dev/lockbox/internal/config"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/mail"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/store"
)

func newServerCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:                "server [flags]",
		Short:              "Run the API server",
		Long:               "Run the API server. Settings (environment variable, flag):\n\n" + config.Usage(),
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if a == "-h" || a == "--help" || a == "-help" {
					return cmd.Help()
				}
			}
			cfg, err := config.Load(getenv, args, os.ReadFile)
			if err != nil {
				return &exitError{2, fmt.Errorf("bad configuration: %s", oneLine(err))}
			}
			return serve(cmd.Context(), cfg, stdout, stderr)
		},
	}
}

// oneLine joins a multi-error into one line.
func oneLine(err error) string {
	s := err.Error()
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, "; "...)
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

// openDeps opens the root key, database and keyring for cfg. Failures are exit code 2.
func openDeps(ctx context.Context, cfg config.Config, log *slog.Logger) (*store.DB, *keyring.Keyring, error) {
	if !cfg.Postgres() || cfg.RootKeyBytes() == nil {
		if err := checkDataDirOwner(cfg.DataDir, os.Getuid()); err != nil {
			return nil, nil, &exitError{2, err}
		}
	}
	root := cfg.RootKeyBytes()
	if root == nil {
		var created bool
		var err error
		root, created, err = keyring.LoadOrCreateRootKey(cfg.DataDir)
		if err != nil {
			return nil, nil, &exitError{2, err}
		}
		if created {
			log.Warn("GENERATED A NEW ROOT KEY: without it the database cannot be decrypted. Back it up, or set LOCKBOX_ROOT_KEY and remove the file.",
				"file", cfg.DataDir+"/"+keyring.RootKeyFile)
		}
	}
	db, err := store.Open(ctx, store.Options{URL: string(cfg.DatabaseURL), Dir: cfg.DataDir, MaxConns: cfg.DBMaxConns})
	if err != nil {
		return nil, nil, &exitError{2, err}
	}
	if !cfg.Postgres() {
		warnLoosePermissions(log, cfg.DataDir)
	}
	kr, err := keyring.New(root, db)
	if err != nil {
		db.Close()
		return nil, nil, &exitError{2, err}
	}
	// Prove the root key opens this database's keys before serving anything.
	if _, err := kr.SystemKey(ctx, "jwt"); err != nil {
		db.Close()
		return nil, nil, &exitError{2, errors.New("the root key does not open this database's keys (wrong LOCKBOX_ROOT_KEY or root.key?)")}
	}
	return db, kr, nil
}

// checkDataDirOwner refuses, for a server running as user me, a data dir
// another unprivileged user could have prepared: one owned by a user other
// than me and root, or holding a root key or database file of such a user.
// The server would otherwise start on a root key and database that user
// knows (a data dir made in /tmp, or LOCKBOX_DATA_DIR pointed at one). A
// server running as root is not refused (a root container on a bind mount
// owned by the host's user is common); loose modes are warned about
// (warnLoosePermissions), as a Kubernetes volume may be group- or
// world-writable. A dir that does not exist yet is made by lockbox, 0700.
func checkDataDirOwner(dir string, me int) error {
	if dir == "" || me == 0 {
		return nil
	}
	foreign := func(fi os.FileInfo) bool {
		st, ok := fi.Sys().(*syscall.Stat_t)
		return ok && int(st.Uid) != me && st.Uid != 0
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil // made by lockbox, or its own error when opened
	}
	if foreign(fi) {
		return fmt.Errorf("the data dir %s belongs to another user, who could replace its root key or database: use a directory of your own (chown it to this user), mode 0700", dir)
	}
	for _, name := range []string{keyring.RootKeyFile, store.SQLiteFile, store.SQLiteFile + "-wal"} {
		if fi, err := os.Lstat(filepath.Join(dir, name)); err == nil && foreign(fi) {
			return fmt.Errorf("%s belongs to another user: not starting on a file someone else may have put there (chown it to this user if it is yours)", filepath.Join(dir, name))
		}
	}
	return nil
}

// warnLoosePermissions warns when group or others may enter the data dir or
// open a file lockbox keeps in it. lockbox creates them 0700 and 0600 but does
// not change modes an operator chose.
func warnLoosePermissions(log *slog.Logger, dir string) {
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the data dir is accessible to group or others: chmod 700 it",
			"dir", dir, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	for _, name := range []string{keyring.RootKeyFile, store.SQLiteFile, store.SQLiteFile + "-wal", store.SQLiteFile + "-shm"} {
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&^0o600 != 0 {
			log.Warn("a data file's mode is wider than 0600: chmod 600 it",
				"file", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
		}
	}
}

func serve(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	start := time.Now()
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	db, kr, err := openDeps(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	targets, err := dynamic.ParseTargetPolicy(cfg.DynamicTargetsAllow, cfg.DynamicTargetsDeny)
	if err != nil {
		return &exitError{2, fmt.Errorf("dynamic secret targets: %v", err)}
	}
	var mailer org.Mailer
	if cfg.SMTPURL != "" {
		m, err := mail.Parse(string(cfg.SMTPURL))
		if err != nil {
			return &exitError{2, err} // never echoes the URL: it may hold a password
		}
		mailer = m
		log.Info("invitation links are mailed", "via", m.String())
	}
	srv := app.New(db, kr, app.Options{
		Mailer:                  mailer,
		SiteURL:                 cfg.SiteURL,
		TargetPolicy:            targets,
		Version:                 version,
		MaxBodyBytes:            cfg.MaxBodyBytes,
		AuthRateLimit:           cfg.AuthRateLimit,
		PasswordHashConcurrency: cfg.PasswordHashConcurrency,
		Logger:                  log,
		LeaseCreatingTimeout:    cfg.LeaseCreatingTimeout,
		MaxLeases:               cfg.MaxLeaseLimit,
		AuditLogRetentionDays:   cfg.AuditLogRetentionDays,
		RotationClaimTimeout:    cfg.RotationClaimTimeout,
		SessionIdleTimeout:      cfg.SessionIdleTimeout,
		SessionAbsoluteTimeout:  cfg.SessionAbsoluteTimeout,
		TrustedProxies:          cfg.TrustedProxies,
		ClientIPHeader:          cfg.ClientIPHeader,
		CertHeader:              cfg.TLSClientCertHeader,
		MetricsToken:            string(cfg.MetricsToken),
		SeparateMetrics:         cfg.MetricsListen != "",
	})
	var tlsf *tlsFiles
	if cfg.TLS() {
		if tlsf, err = newTLSFiles(cfg); err != nil {
			return &exitError{2, err}
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return &exitError{2, fmt.Errorf("listen on %s: %v", cfg.Listen, err)}
	}
	scheme := "http"
	if tlsf != nil {
		scheme = "https"
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for range hup {
				if err := tlsf.reload(); err != nil {
					log.Error("TLS reload failed; still serving the previous certificate", "err", err.Error())
				} else {
					log.Info("TLS certificate reloaded")
				}
			}
		}()
	}
	errc := make(chan error, 2)
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		// Tokens, cookies and forwarding headers fit many times over; the
		// default 1 MiB lets one request hold far more.
		MaxHeaderBytes: 64 << 10,
		ReadTimeout:    60 * time.Second,
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    120 * time.Second,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if tlsf != nil {
		hs.TLSConfig = tlsf.config()
	}
	hs.RegisterOnShutdown(srv.CloseStreams)
	servers := []*http.Server{hs}
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return &exitError{2, fmt.Errorf("listen on %s (metrics): %v", cfg.MetricsListen, err)}
		}
		ms := &http.Server{
			Handler:           srv.MetricsHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, ms)
		go func() { errc <- ms.Serve(mln) }()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	go func() {
		if tlsf != nil {
			errc <- hs.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
			return
		}
		errc <- hs.Serve(ln)
	}()
	wctx, stopWorker := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	workers.Go(func() { srv.Worker.Run(wctx) })
	workers.Go(func() { srv.Rotations.Run(wctx) })
	workers.Go(func() { srv.PKIAlerts.Run(wctx) })
	workers.Go(func() { srv.Events.Run(wctx) })
	workers.Go(func() { srv.TokenUse.Run(wctx) })
	workers.Go(func() { db.RunPurge(wctx, cfg.AuditLogRetentionDays, log) })
	defer func() { stopWorker(); workers.Wait() }()
	log.Info("lockbox listening", "addr", ln.Addr().String(), "tls", tlsf != nil, "database", db.Engine(), "version", version,
		"startup", time.Since(start).String())
	fmt.Fprintf(stdout, "lockbox %s listening on %s://%s (%s)\n", version, scheme, ln.Addr(), db.Engine())

	select {
	case err := <-errc:
		for _, s := range servers {
			s.Close()
		}
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var shut sync.WaitGroup
	shutErrs := make([]error, len(servers))
	for i, s := range servers {
		shut.Go(func() { shutErrs[i] = s.Shutdown(sctx) })
	}
	shut.Wait()
	if err := errors.Join(shutErrs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
