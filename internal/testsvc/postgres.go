package testsvc

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGBin holds the PostgreSQL server binaries ScramPostgres runs.
const PGBin = "/usr/lib/postgresql/15/bin"

// ScramPostgres starts a throwaway PostgreSQL cluster that makes every
// connection, loopback included, prove its password with scram-sha-256 (the
// machine's own cluster trusts loopback, so a wrong password logs in there).
// It listens only on 127.0.0.1 at a free port, lives in its own temporary
// directory, and is stopped and removed at cleanup. It returns the URL of the
// superuser postgres, password included, on database postgres.
//
// initdb and postgres refuse to run as root: as root they run as the postgres
// OS user, which owns the directory.
func ScramPostgres(t testing.TB) (adminURL string) {
	t.Helper()
	_, err := os.Stat(filepath.Join(PGBin, "initdb"))
	Need(t, err, "PostgreSQL server binaries (Debian package postgresql-15)")
	var asPostgres []string // command prefix, and the owner of the directory
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		Need(t, err, "the postgres OS user (initdb will not run as root)")
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		asPostgres = []string{"runuser", "-u", "postgres", "--"}
	}
	// Not t.TempDir: its parents may be closed to the postgres user.
	dir, err := os.MkdirTemp("", "lockbox-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pass := "Pg" + Suffix() + Suffix()
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		for _, p := range []string{dir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	run := func(name string, args ...string) error {
		argv := append(append(asPostgres[:len(asPostgres):len(asPostgres)], filepath.Join(PGBin, name)), args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir // initdb fails in a working directory it cannot read
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", name, err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile="+pwfile,
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"); err != nil {
		t.Fatal(err)
	}
	logfile := filepath.Join(dir, "log")
	var port int
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		// Settings later in postgresql.conf win, so each attempt appends its port.
		conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"+
			"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n", port, dir)
		f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString(conf)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		err = run("pg_ctl", "start", "-D", data, "-l", logfile, "-w", "-t", "30")
		if err == nil {
			break
		}
		if attempt == 3 { // the port was taken in between each time?
			log, _ := os.ReadFile(logfile)
			t.Fatalf("%v\n%s", err, log)
		}
	}
	t.Cleanup(func() {
		if err := run("pg_ctl", "stop", "-D", data, "-m", "immediate", "-w"); err != nil {
			t.Errorf("stop the throwaway PostgreSQL: %v", err)
		}
	})
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", pass),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres", RawQuery: "sslmode=disable"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		log, _ := os.ReadFile(logfile)
		t.Fatalf("connect to the throwaway PostgreSQL as its superuser: %v\n%s", err, log)
	}
	c.Close(ctx)
	return u.String()
}
