package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// cli holds what every client command shares: the process's environment and
// streams, and the global flags.
type cli struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer

	domain string // --domain
	token  string // --token
	output string // --output: table or json

	api *client.Client // set by the first client call of a command
}

// envFirst returns the first non-empty environment variable of names.
func (c *cli) envFirst(names ...string) string {
	for _, n := range names {
		if v := c.getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// session is what `lockbox login` saves, in a per-user file with mode 0600.
type session struct {
	Domain    string    `json:"domain"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	TTL       int64     `json:"ttlSeconds"` // the token's lifetime when issued
	Method    string    `json:"method"`
}

// sessionPath is $LOCKBOX_CONFIG_DIR/session.json, else <user config dir>/lockbox/session.json.
func (c *cli) sessionPath() (string, error) {
	dir := c.getenv("LOCKBOX_CONFIG_DIR")
	if dir == "" {
		base := c.getenv("XDG_CONFIG_HOME")
		if base == "" {
			home := c.getenv("HOME")
			if home == "" {
				var err error
				if home, err = os.UserHomeDir(); err != nil {
					return "", fmt.Errorf("no place for the session file: set LOCKBOX_CONFIG_DIR (%v)", err)
				}
			}
			base = filepath.Join(home, ".config")
		}
		dir = filepath.Join(base, "lockbox")
	}
	return filepath.Join(dir, "session.json"), nil
}

func (c *cli) loadSession() (*session, error) {
	p, err := c.sessionPath()
	if err != nil {
		return nil, err
	}
	// A session file is trusted only if it is the user's own and nobody
	// else may write it: its domain receives the client secret of a login
	// from the environment, so a file planted in a config dir another user
	// may write would send it to their server.
	// The file is opened without following a link and checked on the
	// descriptor it is read from: checked by path and then read by path,
	// a link swapped in between was read.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	notOurs := fmt.Errorf("session file %s is not a file of yours that only you may write: not using it (remove it and run lockbox login again)", p)
	if errors.Is(err, syscall.ELOOP) {
		return nil, notOurs
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 || ok && int(st.Uid) != os.Getuid() {
		return nil, notOurs
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, err
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("session file %s is damaged (%v): run lockbox login again", p, err)
	}
	return &s, nil
}

// saveSession writes the file atomically; it is never readable by others.
func (c *cli) saveSession(s *session) error {
	p, err := c.sessionPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	tmp, err := os.CreateTemp(filepath.Dir(p), ".session-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// domainFor picks the server: --domain, then the environment (LOCKBOX_API_URL,
// INFISICAL_API_URL, INFISICAL_DOMAIN), then the saved session, then the local default.
func (c *cli) domainFor(s *session) string {
	if c.domain != "" {
		return c.domain
	}
	if v := c.envFirst("LOCKBOX_API_URL", "INFISICAL_API_URL", "INFISICAL_DOMAIN"); v != "" {
		return v
	}
	if s != nil && s.Domain != "" {
		return s.Domain
	}
	return "http://127.0.0.1:8080"
}

// call sends one request with the command's authenticated client.
func (c *cli) call(ctx context.Context, method, path string, body, out any) error {
	cl, err := c.client(ctx)
	if err != nil {
		return err
	}
	return cl.Do(ctx, method, path, body, out)
}

// client returns an authenticated client, made once per command. The token comes from --token, then
// LOCKBOX_TOKEN / INFISICAL_TOKEN, then a Universal Auth login with the
// client ID and secret in the environment, then the saved session, which is
// renewed when less than a third of its lifetime is left.
func (c *cli) client(ctx context.Context) (*client.Client, error) {
	if c.api != nil {
		return c.api, nil
	}
	cl, err := c.newClient(ctx)
	if err == nil {
		c.api = cl
	}
	return cl, err
}

func (c *cli) newClient(ctx context.Context) (*client.Client, error) {
	s, err := c.loadSession()
	if err != nil {
		return nil, err
	}
	cl := client.New(c.domainFor(s), "")
	if c.token != "" {
		cl.Token = c.token
		return cl, nil
	}
	if v := c.envFirst("LOCKBOX_TOKEN", "INFISICAL_TOKEN"); v != "" {
		cl.Token = v
		return cl, nil
	}
	id := c.envFirst("LOCKBOX_UNIVERSAL_AUTH_CLIENT_ID", "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID")
	secret := c.envFirst("LOCKBOX_UNIVERSAL_AUTH_CLIENT_SECRET", "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET")
	if id != "" && secret != "" {
		res, err := cl.UniversalAuthLogin(ctx, id, secret)
		if err != nil {
			return nil, fmt.Errorf("universal auth login with the client ID in the environment: %w", err)
		}
		cl.Token = res.AccessToken
		return cl, nil
	}
	if s == nil || s.Token == "" {
		return nil, errors.New("not logged in: run lockbox login, or set INFISICAL_TOKEN (or LOCKBOX_TOKEN)")
	}
	if s.Domain != "" && c.domainFor(s) != s.Domain {
		return nil, fmt.Errorf("the saved session is for %s, not %s: run lockbox login --domain %s", s.Domain, cl.BaseURL, cl.BaseURL)
	}
	now := time.Now()
	if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
		return nil, fmt.Errorf("the saved session expired at %s: run lockbox login again", s.ExpiresAt.Local().Format(time.RFC3339))
	}
	cl.Token = s.Token
	if s.TTL > 0 && s.ExpiresAt.Sub(now) < time.Duration(s.TTL)*time.Second/3 {
		var res client.LoginResponse
		err := cl.Do(ctx, http.MethodPost, "/api/v1/auth/token/renew", map[string]string{"accessToken": s.Token}, &res)
		if err == nil && res.AccessToken != "" {
			s.Token, s.ExpiresAt = res.AccessToken, now.Add(time.Duration(res.ExpiresIn)*time.Second)
			if err := c.saveSession(s); err != nil {
				fmt.Fprintf(c.stderr, "lockbox: renewed the session but could not save it: %v\n", printableLines(err.Error()))
			}
			cl.Token = s.Token
		} else if err != nil {
			fmt.Fprintf(c.stderr, "lockbox: could not renew the session (it expires at %s): %v\n", s.ExpiresAt.Local().Format(time.RFC3339), printableLines(err.Error()))
		}
	}
	return cl, nil
}

// print writes v as JSON (--output json) or as a table of rows under header.
func (c *cli) print(v any, header []string, rows [][]string) error {
	if c.output == "json" {
		// DEL and the C1 controls escaped (yamlSafe), as JSON allows: raw,
		// a C1 CSI drove terminals that act on 8-bit controls.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := io.WriteString(c.stdout, yamlSafe(b.Bytes()))
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = printable(strings.ReplaceAll(strings.ReplaceAll(r[i], "\t", " "), "\n", `\n`))
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printable is s with control characters (C0 but tab, DEL, C1) written as
// \xNN or \uNNNN: text from the server (a secret's value, a name, an error
// message) that a writer chose must not drive the reader's terminal
// (escape sequences that retitle it, rewrite the screen, set the clipboard).
func printable(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !isControl(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// printableLines is printable line by line: an error's own line breaks stay.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return strings.Join(lines, "\n")
}

func isControl(r rune) bool { return r != '\t' && (r < 0x20 || r >= 0x7f && r < 0xa0) }

// checkOutput validates the global --output flag.
func (c *cli) checkOutput(*cobra.Command, []string) error {
	if c.output != "table" && c.output != "json" {
		return fmt.Errorf("--output must be table or json, not %q", c.output)
	}
	return nil
}

// scope is the project / environment / folder a command works in.
type scope struct {
	projectID, env, path string
}

func (s *scope) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.projectID, "projectId", "", "project ID (required)")
	f.StringVar(&s.env, "env", "dev", "environment slug")
	f.StringVar(&s.path, "path", "/", "folder path")
	cmd.MarkFlagRequired("projectId")
}

// projectSlug resolves the project's slug (the dynamic-secret API is by slug).
func projectSlug(ctx context.Context, cl *client.Client, id string) (string, error) {
	var out struct {
		Project struct {
			Slug string `json:"slug"`
		} `json:"project"`
	}
	if err := cl.Do(ctx, http.MethodGet, "/api/v1/projects/"+pathEscape(id), nil, &out); err != nil {
		return "", err
	}
	return out.Project.Slug, nil
}
