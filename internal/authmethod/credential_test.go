package authmethod_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
)

type tokenMethod struct{ got *string }

func (m tokenMethod) Verify(_ context.Context, credential string) (authmethod.Verified, error) {
	*m.got = credential
	return authmethod.Verified{}, nil
}

type requestMethod struct {
	tokenMethod
	gotBody *string
}

func (m requestMethod) VerifyRequest(_ context.Context, c authmethod.Credential) (authmethod.Verified, error) {
	*m.gotBody = string(c.Body)
	return authmethod.Verified{}, nil
}

// A token method is given the request's token; a RequestVerifier the whole
// request, and its Verify is never called.
func TestVerifyCredentialPicksTheMethodsForm(t *testing.T) {
	c := authmethod.Credential{Token: "tok", Body: json.RawMessage(`{"username":"u","password":"p"}`)}
	var tok, body string
	if _, err := authmethod.VerifyCredential(context.Background(), tokenMethod{&tok}, c); err != nil || tok != "tok" {
		t.Fatalf("token method given %q, %v", tok, err)
	}
	tok = ""
	if _, err := authmethod.VerifyCredential(context.Background(), requestMethod{tokenMethod{&tok}, &body}, c); err != nil ||
		body != string(c.Body) || tok != "" {
		t.Fatalf("request method given body %q, Verify called with %q, %v", body, tok, err)
	}
}
