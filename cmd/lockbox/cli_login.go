package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

func (c *cli) newLoginCmd() *cobra.Command {
	var method, id, secret string
	var plain bool
	cmd := &cobra.Command{
		Use:   "login --method universal-auth --client-id ID --client-secret SECRET",
		Short: "Log in as a machine identity and save the session",
		Long: `Log in with Universal Auth and save the session (server, token, expiry) in
$LOCKBOX_CONFIG_DIR/session.json (default ~/.config/lockbox/session.json), mode
0600. Later commands use it and renew it when less than a third of its
lifetime is left. The client ID and secret may also come from
INFISICAL_UNIVERSAL_AUTH_CLIENT_ID / INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET
(or LOCKBOX_UNIVERSAL_AUTH_CLIENT_ID / _SECRET). --plain prints only the token,
for export INFISICAL_TOKEN=$(lockbox login ... --plain).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if method != "universal-auth" {
				return fmt.Errorf("--method %q is not supported (universal-auth)", method)
			}
			if id == "" {
				id = c.envFirst("LOCKBOX_UNIVERSAL_AUTH_CLIENT_ID", "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID")
			}
			if secret == "" {
				secret = c.envFirst("LOCKBOX_UNIVERSAL_AUTH_CLIENT_SECRET", "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET")
			}
			if id == "" || secret == "" {
				return errors.New("--client-id and --client-secret (or INFISICAL_UNIVERSAL_AUTH_CLIENT_ID / _SECRET) are required")
			}
			s, _ := c.loadSession()
			cl := client.New(c.domainFor(s), "")
			res, err := cl.UniversalAuthLogin(cmd.Context(), id, secret)
			if err != nil {
				return err
			}
			ns := &session{Domain: cl.BaseURL, Token: res.AccessToken, TTL: res.ExpiresIn, Method: method,
				ExpiresAt: time.Now().Add(time.Duration(res.ExpiresIn) * time.Second).UTC().Truncate(time.Second)}
			if err := c.saveSession(ns); err != nil {
				return fmt.Errorf("logged in, but the session could not be saved: %w", err)
			}
			if plain {
				_, err := fmt.Fprintln(c.stdout, res.AccessToken)
				return err
			}
			p, _ := c.sessionPath()
			return c.print(map[string]any{"domain": ns.Domain, "expiresAt": ns.ExpiresAt, "sessionFile": p},
				[]string{"DOMAIN", "EXPIRES", "SESSION FILE"}, [][]string{{ns.Domain, ns.ExpiresAt.Local().Format(time.RFC3339), p}})
		},
	}
	f := cmd.Flags()
	f.StringVar(&method, "method", "universal-auth", "login method")
	f.StringVar(&id, "client-id", "", "Universal Auth client ID")
	f.StringVar(&secret, "client-secret", "", "Universal Auth client secret")
	f.BoolVar(&plain, "plain", false, "print only the access token")
	return cmd
}

func (c *cli) newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the saved session's token and delete the session file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := c.loadSession()
			if err != nil {
				return err
			}
			if s == nil {
				return errors.New("not logged in")
			}
			cl := client.New(c.domainFor(s), "")
			rerr := cl.Do(cmd.Context(), http.MethodPost, "/api/v1/auth/token/revoke", map[string]string{"accessToken": s.Token}, nil)
			p, _ := c.sessionPath()
			if err := os.Remove(p); err != nil {
				return err
			}
			if rerr != nil {
				fmt.Fprintf(c.stderr, "lockbox: session file removed, but the token could not be revoked: %v\n", rerr)
			}
			return nil
		},
	}
}
