package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-resty/resty/v2"
	infisical "github.com/infisical/go-sdk"
	sdkauth "github.com/infisical/go-sdk/packages/api/auth"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// newSDK returns the real Infisical Go SDK pointed at e, without background refresh.
func newSDK(t *testing.T, e *apptest.Env) infisical.InfisicalClientInterface {
	t.Helper()
	off := false
	return infisical.NewInfisicalClient(context.Background(), infisical.Config{SiteUrl: e.URL, AutoTokenRefresh: &off, SilentMode: true})
}

func TestGoSDKUniversalAuthLoginRenewRevoke(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		clientID := uaSetup(t, e, map[string]any{"accessTokenTTL": 600, "accessTokenMaxTTL": 1200})
		secret, _ := newSecret(t, e, map[string]any{})
		sdk := newSDK(t, e)

		cred, err := sdk.Auth().UniversalAuthLogin(clientID, secret)
		if err != nil {
			t.Fatalf("SDK login: %v", err)
		}
		if cred.AccessToken == "" || cred.ExpiresIn != 600 || cred.AccessTokenMaxTTL != 1200 || cred.TokenType != "Bearer" {
			t.Fatalf("SDK credential %+v", cred)
		}
		if sdk.Auth().GetAccessToken() != cred.AccessToken {
			t.Fatal("SDK did not keep the token")
		}
		// The SDK's own renewal call (what its refresher sends).
		renewed, err := sdkauth.CallRenewAccessToken(resty.New().SetBaseURL(e.URL+"/api"), sdkauth.RenewAccessTokenRequest{AccessToken: cred.AccessToken})
		if err != nil || renewed.AccessToken == "" || renewed.ExpiresIn != 600 {
			t.Fatalf("SDK renew: %+v %v", renewed, err)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", renewed.AccessToken, nil)

		// Wrong credentials surface the server's message through the SDK's error.
		_, err = newSDK(t, e).Auth().UniversalAuthLogin(clientID, strings.Repeat("0", 64))
		if err == nil || !strings.Contains(err.Error(), "Invalid credentials") || !strings.Contains(err.Error(), "401") {
			t.Fatalf("SDK bad login error: %v", err)
		}

		if err := sdk.Auth().RevokeAccessToken(); err != nil {
			t.Fatalf("SDK revoke: %v", err)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", cred.AccessToken, nil), 401, "UnauthorizedError")
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", renewed.AccessToken, nil), 401, "UnauthorizedError")
	})
}

func TestGoSDKFoldersWithUniversalAuth(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "sdk"})
		clientID := uaSetup(t, e, map[string]any{})
		secret, _ := newSecret(t, e, map[string]any{})
		sdk := newSDK(t, e)
		if _, err := sdk.Auth().UniversalAuthLogin(clientID, secret); err != nil {
			t.Fatal(err)
		}
		made, err := sdk.Folders().Create(infisical.CreateFolderOptions{ProjectID: p.ID, Environment: "dev", Name: "svc", Path: "/apps"})
		if err != nil || made.Name != "svc" || made.ID == "" || made.CreatedAt.IsZero() || made.ParentID == "" {
			t.Fatalf("SDK create folder: %+v %v", made, err)
		}
		list, err := sdk.Folders().List(infisical.ListFoldersOptions{ProjectID: p.ID, Environment: "dev", Path: "/apps"})
		if err != nil || len(list) != 1 || list[0].ID != made.ID || list[0].EnvironmentID == "" {
			t.Fatalf("SDK list folders: %+v %v", list, err)
		}
		del, err := sdk.Folders().Delete(infisical.DeleteFolderOptions{ProjectID: p.ID, Environment: "dev", FolderID: made.ID, Path: "/apps"})
		if err != nil || del.ID != made.ID {
			t.Fatalf("SDK delete folder: %+v %v", del, err)
		}
		_, err = sdk.Folders().List(infisical.ListFoldersOptions{ProjectID: p.ID, Environment: "nope"})
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("SDK error for an unknown environment: %v", err)
		}
	})
}
