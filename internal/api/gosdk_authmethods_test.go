package api_test

import (
	"strings"
	"testing"

	infisical "github.com/infisical/go-sdk"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The real Go SDK v0.8.0 logs in with JWT Auth and OIDC Auth (its
// JwtAuthLogin and OidcAuthLogin) and reads a secret with the token.
func TestGoSDKJWTAndOIDCAuthLoginReadSecret(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "sdk-platform-login"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "DB_PASSWORD", "s3cret-from-lockbox")

		jwtID, _ := projectMember(t, e, p.ID, "ci-job", "viewer")
		signer := newTokenSigner(t, "ec", "")
		jcfg := boundedJWTConfig()
		jcfg["configurationType"], jcfg["publicKeys"] = "static", []string{signer.PublicPEM(t)}
		e.Must(t, 200, "POST", "/api/v1/auth/jwt-auth/identities/"+jwtID, e.Token, jcfg)

		oidcID, _ := projectMember(t, e, p.ID, "k8s-pod", "viewer")
		idp := newTokenSigner(t, "rsa", "idp-1")
		iss := newOIDCIssuer(t, idp)
		e.Must(t, 200, "POST", "/api/v1/auth/oidc-auth/identities/"+oidcID, e.Token, iss.config())

		for _, c := range []struct {
			name  string
			login func(sdk infisical.InfisicalClientInterface) (infisical.MachineIdentityCredential, error)
		}{
			{"jwt", func(sdk infisical.InfisicalClientInterface) (infisical.MachineIdentityCredential, error) {
				return sdk.Auth().JwtAuthLogin(jwtID, signer.Sign(t, workloadClaims()))
			}},
			{"oidc", func(sdk infisical.InfisicalClientInterface) (infisical.MachineIdentityCredential, error) {
				return sdk.Auth().OidcAuthLogin(oidcID, idp.Sign(t, iss.idClaims()))
			}},
		} {
			sdk := newSDK(t, e)
			cred, err := c.login(sdk)
			if err != nil || cred.AccessToken == "" || cred.TokenType != "Bearer" || cred.ExpiresIn != 2592000 {
				t.Fatalf("%s: SDK login: %+v %v", c.name, cred, err)
			}
			got, err := sdk.Secrets().Retrieve(infisical.RetrieveSecretOptions{SecretKey: "DB_PASSWORD", ProjectID: p.ID, Environment: "dev"})
			if err != nil || got.SecretValue != "s3cret-from-lockbox" {
				t.Fatalf("%s: SDK read: %+v %v", c.name, got, err)
			}
		}

		// A refused token surfaces the server's reason through the SDK's error.
		bad := workloadClaims()
		bad["iss"] = "https://elsewhere.example"
		_, err := newSDK(t, e).Auth().JwtAuthLogin(jwtID, signer.Sign(t, bad))
		if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "issuer mismatch") {
			t.Fatalf("SDK refused login: %v", err)
		}
	})
}

// The real Go SDK v0.8.0 logs in with LDAP Auth (its LdapAuthLogin) against
// a throwaway slapd and reads a secret with the token.
func TestGoSDKLDAPAuthLoginReadSecret(t *testing.T) {
	dir := newDirectory(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "sdk-ldap-login"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "DB_PASSWORD", "s3cret-from-lockbox")
		id, _ := projectMember(t, e, p.ID, "ldap-job", "viewer")
		e.Must(t, 200, "POST", "/api/v1/auth/ldap-auth/identities/"+id, e.Token, dir.config(nil))

		sdk := newSDK(t, e)
		cred, err := sdk.Auth().LdapAuthLogin(id, "alice", dir.pw["alice"])
		if err != nil || cred.AccessToken == "" || cred.TokenType != "Bearer" || cred.ExpiresIn != 2592000 {
			t.Fatalf("SDK login: %+v %v", cred, err)
		}
		got, err := sdk.Secrets().Retrieve(infisical.RetrieveSecretOptions{SecretKey: "DB_PASSWORD", ProjectID: p.ID, Environment: "dev"})
		if err != nil || got.SecretValue != "s3cret-from-lockbox" {
			t.Fatalf("SDK read: %+v %v", got, err)
		}
		_, err = newSDK(t, e).Auth().LdapAuthLogin(id, "alice", "wrong")
		if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Invalid credentials") ||
			strings.Contains(err.Error(), "wrong") {
			t.Fatalf("SDK refused login: %v", err)
		}
	})
}
