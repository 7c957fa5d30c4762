package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// prepareKMS makes a project and a key and returns one KMS operation over
// HTTP: kms-encrypt and kms-decrypt of 1 KiB with an aes-256-gcm key,
// kms-sign and kms-verify of 1 KiB with an ECC_NIST_P256 key (ECDSA_SHA_256)
// or, with rsa, an RSA_4096 key (RSASSA_PSS_SHA_256).
func prepareKMS(ctx context.Context, c *client.Client, url, scenario string, rsa bool) (func(*http.Client) error, error) {
	var p struct {
		Project struct{ ID string } `json:"project"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"projectName": "bench-kms"}, &p); err != nil {
		return nil, err
	}
	usage, alg, sa := "encrypt-decrypt", "aes-256-gcm", ""
	if scenario == "kms-sign" || scenario == "kms-verify" {
		usage, alg, sa = "sign-verify", "ECC_NIST_P256", "ECDSA_SHA_256"
		if rsa {
			alg, sa = "RSA_4096", "RSASSA_PSS_SHA_256"
		}
	}
	var k struct {
		Key struct{ ID string } `json:"key"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/kms/keys", map[string]any{"projectId": p.Project.ID, "name": "bench",
		"keyUsage": usage, "encryptionAlgorithm": alg}, &k); err != nil {
		return nil, err
	}
	data := base64.StdEncoding.EncodeToString(make([]byte, 1024))
	keyURL := url + "/api/v1/kms/keys/" + k.Key.ID
	var path string
	var body any
	switch scenario {
	case "kms-encrypt":
		path, body = "/encrypt", map[string]any{"plaintext": data}
	case "kms-decrypt":
		var ct struct{ Ciphertext string }
		if err := c.Do(ctx, "POST", "/api/v1/kms/keys/"+k.Key.ID+"/encrypt", map[string]any{"plaintext": data}, &ct); err != nil {
			return nil, err
		}
		path, body = "/decrypt", map[string]any{"ciphertext": ct.Ciphertext}
	case "kms-sign":
		path, body = "/sign", map[string]any{"data": data, "signingAlgorithm": sa}
	case "kms-verify":
		var sig struct{ Signature string }
		if err := c.Do(ctx, "POST", "/api/v1/kms/keys/"+k.Key.ID+"/sign", map[string]any{"data": data, "signingAlgorithm": sa}, &sig); err != nil {
			return nil, err
		}
		path, body = "/verify", map[string]any{"data": data, "signature": sig.Signature, "signingAlgorithm": sa}
	default:
		return nil, fmt.Errorf("unknown scenario %q", scenario)
	}
	b, _ := json.Marshal(body)
	token := c.Token
	return func(hc *http.Client) error { return send(hc, "POST", keyURL+path, token, string(b)) }, nil
}
