package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// defaultServiceAccountTokenPath is where Kubernetes mounts a pod's
// service-account token.
const defaultServiceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

func (c *cli) newLoginCmd() *cobra.Command {
	var method, id, secret, identityID, jwt, saTokenPath, ldapUser, ldapPass string
	var stsEndpoint, gcpKeyPath, azureResource, azureClientID string
	var plain bool
	cmd := &cobra.Command{
		Use:   "login --method METHOD [flags]",
		Short: "Log in as a machine identity (or as yourself: --method device) and save the session",
		Long: `Log in as a machine identity and save the session (server, token, expiry) in
$LOCKBOX_CONFIG_DIR/session.json (default ~/.config/lockbox/session.json), mode
0600. Later commands use it and renew it when less than a third of its
lifetime is left. --plain prints only the token, for
export INFISICAL_TOKEN=$(lockbox login ... --plain). Methods and their flags,
as Infisical's CLI names them:

  universal-auth  --client-id, --client-secret (or INFISICAL_UNIVERSAL_AUTH_CLIENT_ID / _SECRET)
  jwt-auth        --machine-identity-id, --jwt (or INFISICAL_MACHINE_IDENTITY_ID, INFISICAL_JWT)
  oidc-auth       --machine-identity-id, --jwt
  kubernetes      --machine-identity-id, --service-account-token-path
                  (default ` + defaultServiceAccountTokenPath + `)
  ldap-auth       --machine-identity-id, --ldap-username, --ldap-password
                  (or LOCKBOX_LDAP_USERNAME / LOCKBOX_LDAP_PASSWORD)

  aws-iam         --machine-identity-id; signs STS GetCallerIdentity with the AWS
                  credentials the environment gives (AWS_* variables, shared
                  config, web identity, container or instance role) for the
                  region's STS host, or for --aws-sts-endpoint
  gcp-id-token    --machine-identity-id; the instance identity token from the GCE
                  metadata server (GCE_METADATA_HOST overrides its address)
  gcp-iam         --machine-identity-id, --service-account-key-file-path (or
                  INFISICAL_GCP_IAM_SERVICE_ACCOUNT_KEY_FILE_PATH, then
                  GOOGLE_APPLICATION_CREDENTIALS); signs the
                  token with the key file itself, no call to Google
  azure           --machine-identity-id, --azure-resource (default
                  ` + defaultAzureResource + `), --azure-client-id for a user-assigned
                  identity; the token from Azure's instance metadata service
                  (LOCKBOX_AZURE_IMDS_URL overrides its address)

  device          as yourself, a user: prints a code and a dashboard URL; open
                  it (signed in by password or your organization's SSO), check
                  the code and approve. The session is yours, in the organization
                  the dashboard was in, for ten days (not renewed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, _ := c.loadSession()
			cl := client.New(c.domainFor(s), "")
			if identityID == "" {
				identityID = c.envFirst("LOCKBOX_MACHINE_IDENTITY_ID", "INFISICAL_MACHINE_IDENTITY_ID")
			}
			needID := func() error {
				if identityID == "" {
					return fmt.Errorf("--machine-identity-id (or INFISICAL_MACHINE_IDENTITY_ID) is required with --method %s", method)
				}
				return nil
			}
			var res client.LoginResponse
			var err error
			switch method {
			case "universal-auth":
				if id == "" {
					id = c.envFirst("LOCKBOX_UNIVERSAL_AUTH_CLIENT_ID", "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID")
				}
				if secret == "" {
					secret = c.envFirst("LOCKBOX_UNIVERSAL_AUTH_CLIENT_SECRET", "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET")
				}
				if id == "" || secret == "" {
					return errors.New("--client-id and --client-secret (or INFISICAL_UNIVERSAL_AUTH_CLIENT_ID / _SECRET) are required")
				}
				res, err = cl.UniversalAuthLogin(cmd.Context(), id, secret)
			case "jwt-auth", "oidc-auth":
				if err := needID(); err != nil {
					return err
				}
				if jwt == "" {
					jwt = c.envFirst("LOCKBOX_JWT", "INFISICAL_JWT")
				}
				if jwt == "" {
					return fmt.Errorf("--jwt (or INFISICAL_JWT) is required with --method %s", method)
				}
				res, err = cl.MethodLogin(cmd.Context(), method, map[string]string{"identityId": identityID, "jwt": jwt})
			case "kubernetes":
				if err := needID(); err != nil {
					return err
				}
				tok, rerr := os.ReadFile(saTokenPath)
				if rerr != nil {
					return fmt.Errorf("read the service-account token: %v", rerr)
				}
				res, err = cl.MethodLogin(cmd.Context(), "kubernetes-auth", map[string]string{"identityId": identityID,
					"jwt": strings.TrimSpace(string(tok))})
			case "ldap-auth":
				if err := needID(); err != nil {
					return err
				}
				if ldapUser == "" {
					ldapUser = c.envFirst("LOCKBOX_LDAP_USERNAME")
				}
				if ldapPass == "" {
					ldapPass = c.envFirst("LOCKBOX_LDAP_PASSWORD")
				}
				if ldapUser == "" || ldapPass == "" {
					return errors.New("--ldap-username and --ldap-password (or LOCKBOX_LDAP_USERNAME / _PASSWORD) are required with --method ldap-auth")
				}
				res, err = cl.MethodLogin(cmd.Context(), "ldap-auth", map[string]string{"identityId": identityID,
					"username": ldapUser, "password": ldapPass})
			case "aws-iam":
				if err := needID(); err != nil {
					return err
				}
				body, berr := awsIAMLoginBody(cmd.Context(), identityID, stsEndpoint)
				if berr != nil {
					return berr
				}
				res, err = cl.MethodLogin(cmd.Context(), "aws-auth", body)
			case "gcp-id-token", "gcp-iam":
				if err := needID(); err != nil {
					return err
				}
				var tok string
				var terr error
				if method == "gcp-id-token" {
					tok, terr = gcpIDToken(cmd.Context(), identityID)
				} else {
					if gcpKeyPath == "" {
						gcpKeyPath = c.envFirst("INFISICAL_GCP_IAM_SERVICE_ACCOUNT_KEY_FILE_PATH", "GOOGLE_APPLICATION_CREDENTIALS")
					}
					if gcpKeyPath == "" {
						return errors.New("--service-account-key-file-path (or INFISICAL_GCP_IAM_SERVICE_ACCOUNT_KEY_FILE_PATH, GOOGLE_APPLICATION_CREDENTIALS) is required with --method gcp-iam")
					}
					tok, terr = gcpIAMToken(gcpKeyPath, identityID)
				}
				if terr != nil {
					return terr
				}
				res, err = cl.MethodLogin(cmd.Context(), "gcp-auth", map[string]string{"identityId": identityID, "jwt": tok})
			case "azure":
				if err := needID(); err != nil {
					return err
				}
				tok, terr := azureToken(cmd.Context(), azureResource, azureClientID)
				if terr != nil {
					return terr
				}
				res, err = cl.MethodLogin(cmd.Context(), "azure-auth", map[string]string{"identityId": identityID, "jwt": tok})
			case "device":
				res, err = c.deviceLogin(cmd.Context(), cl)
			default:
				return fmt.Errorf("--method %q is not supported (universal-auth, jwt-auth, oidc-auth, kubernetes, ldap-auth, aws-iam, gcp-id-token, gcp-iam, azure, device)", method)
			}
			if err != nil {
				return err
			}
			ttl := res.ExpiresIn
			if method == "device" {
				ttl = 0 // a user's session is not renewed: log in again
			}
			ns := &session{Domain: cl.BaseURL, Token: res.AccessToken, TTL: ttl, Method: method,
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
	f.StringVar(&secret, "client-secret", "", "Universal Auth client secret (prefer LOCKBOX_UNIVERSAL_AUTH_CLIENT_SECRET: flags show in ps)")
	f.StringVar(&identityID, "machine-identity-id", "", "the machine identity's id (every method but universal-auth)")
	f.StringVar(&jwt, "jwt", "", "the token to log in with (jwt-auth, oidc-auth; prefer LOCKBOX_JWT: flags show in ps)")
	f.StringVar(&saTokenPath, "service-account-token-path", defaultServiceAccountTokenPath, "file holding the service-account token (kubernetes)")
	f.StringVar(&ldapUser, "ldap-username", "", "LDAP username (ldap-auth)")
	f.StringVar(&ldapPass, "ldap-password", "", "LDAP password (ldap-auth; prefer LOCKBOX_LDAP_PASSWORD: flags show in ps)")
	f.StringVar(&stsEndpoint, "aws-sts-endpoint", "", "STS endpoint to sign for (aws-iam; default the region's)")
	f.StringVar(&gcpKeyPath, "service-account-key-file-path", "", "service-account key file (gcp-iam)")
	f.StringVar(&azureResource, "azure-resource", defaultAzureResource, "resource to ask a token for (azure)")
	f.StringVar(&azureClientID, "azure-client-id", "", "client id of a user-assigned managed identity (azure)")
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
			// The token goes back only to the server that issued it, whatever
			// server --domain or the environment names now.
			cl := client.New(s.Domain, "")
			rerr := cl.Do(cmd.Context(), http.MethodPost, "/api/v1/auth/token/revoke", map[string]string{"accessToken": s.Token}, nil)
			p, _ := c.sessionPath()
			if err := os.Remove(p); err != nil {
				return err
			}
			if rerr != nil {
				fmt.Fprintf(c.stderr, "lockbox: session file removed, but the token could not be revoked: %v\n", printableLines(rerr.Error()))
			}
			return nil
		},
	}
}

// deviceLogin signs the CLI in as a user: it starts a device login, shows
// the code and the dashboard URL on stderr, and polls until the user
// approves it there, denies it, or it expires.
func (c *cli) deviceLogin(ctx context.Context, cl *client.Client) (client.LoginResponse, error) {
	var start struct {
		DeviceCode              string `json:"deviceCode"`
		UserCode                string `json:"userCode"`
		VerificationURI         string `json:"verificationUri"`
		VerificationURIComplete string `json:"verificationUriComplete"`
		ExpiresIn               int    `json:"expiresIn"`
		Interval                int    `json:"interval"`
	}
	if err := cl.Do(ctx, http.MethodPost, "/api/v1/auth/device", map[string]any{}, &start); err != nil {
		return client.LoginResponse{}, err
	}
	// What the server sends is written escaped (printable): a server could
	// otherwise rewrite the terminal or its clipboard through it.
	fmt.Fprintf(c.stderr, "To sign in, open %s\nand check that it shows the code %s (or go to %s and type it).\nWaiting for your approval...\n",
		printable(start.VerificationURIComplete), printable(start.UserCode), printable(start.VerificationURI))
	interval := time.Duration(max(start.Interval, 1)) * time.Second
	deadline := time.Now().Add(time.Duration(start.ExpiresIn) * time.Second)
	for {
		var res struct {
			client.LoginResponse
			User         struct{ Email string }
			Organization struct{ ID, Name string }
		}
		err := cl.Do(ctx, http.MethodPost, "/api/v1/auth/device/token", map[string]string{"deviceCode": start.DeviceCode}, &res)
		var apiErr *client.APIError
		switch {
		case err == nil:
			fmt.Fprintf(c.stderr, "Signed in as %s in organization %s (%s).\n", printable(res.User.Email), printable(res.Organization.Name),
				printable(res.Organization.ID))
			return res.LoginResponse, nil
		case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests && time.Now().Before(deadline):
			interval = min(interval*2, 30*time.Second) // the server asks us to slow down
		case errors.As(err, &apiErr) && apiErr.Name == "authorization_pending" && time.Now().Before(deadline):
		case errors.As(err, &apiErr) && apiErr.Name == "access_denied":
			return client.LoginResponse{}, errors.New("the login was denied in the dashboard")
		case errors.As(err, &apiErr) && (apiErr.Name == "expired_token" || apiErr.Name == "authorization_pending"):
			return client.LoginResponse{}, errors.New("the login expired before it was approved: run lockbox login --method device again")
		default:
			return client.LoginResponse{}, err
		}
		wait := min(interval, max(time.Until(deadline), 0)+time.Second)
		select {
		case <-ctx.Done():
			return client.LoginResponse{}, ctx.Err()
		case <-time.After(wait):
		}
	}
}
