package api_test

import (
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	infisical "github.com/infisical/go-sdk"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The real Go SDK v0.8.0 drives every KMS call it has against lockbox.
func TestGoSDKKMS(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "sdk-kms"})
		clientID := uaSetup(t, e, map[string]any{})
		secret, _ := newSecret(t, e, map[string]any{})
		sdk := newSDK(t, e)
		if _, err := sdk.Auth().UniversalAuthLogin(clientID, secret); err != nil {
			t.Fatal(err)
		}
		kms := sdk.Kms()

		key, err := kms.Keys().Create(infisical.KmsCreateKeyOptions{KeyUsage: "encrypt-decrypt", Description: "payments",
			Name: "payments", EncryptionAlgorithm: "aes-256-gcm", ProjectId: p.ID})
		if err != nil || key.KeyId == "" || key.Name != "payments" || key.ProjectId != p.ID || key.OrgId != e.OrgID ||
			key.Version != 1 || key.KeyUsage != "encrypt-decrypt" || key.EncryptionAlgorithm != "aes-256-gcm" || key.IsDisabled {
			t.Fatalf("SDK create key: %+v %v", key, err)
		}
		byName, err := kms.Keys().GetByName(infisical.KmsGetKeyByNameOptions{KeyName: "payments", ProjectId: p.ID})
		if err != nil || byName.KeyId != key.KeyId || byName.Description != "payments" {
			t.Fatalf("SDK get key by name: %+v %v", byName, err)
		}
		ct, err := kms.EncryptData(infisical.KmsEncryptDataOptions{KeyId: key.KeyId, Plaintext: "card 4242 4242 4242 4242"})
		if err != nil || ct == "" || strings.Contains(ct, "4242") {
			t.Fatalf("SDK encrypt: %q %v", ct, err)
		}
		pt, err := kms.DecryptData(infisical.KmsDecryptDataOptions{KeyId: key.KeyId, Ciphertext: ct})
		if err != nil || pt != "card 4242 4242 4242 4242" {
			t.Fatalf("SDK decrypt: %q %v", pt, err)
		}
		// A tampered ciphertext is the SDK's API error carrying a 400.
		_, err = kms.DecryptData(infisical.KmsDecryptDataOptions{KeyId: key.KeyId, Ciphertext: flip(t, ct, 5)})
		if err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("SDK decrypt of a tampered ciphertext: %v", err)
		}

		for _, c := range []struct{ alg, sa string }{{"rsa-4096", "RSASSA_PSS_SHA_256"}, {"ecc-nist-p256", "ECDSA_SHA_256"}} {
			sk, err := kms.Keys().Create(infisical.KmsCreateKeyOptions{KeyUsage: "sign-verify", Name: "signer-" + c.alg,
				EncryptionAlgorithm: c.alg, ProjectId: p.ID})
			if err != nil || sk.KeyUsage != "sign-verify" {
				t.Fatalf("SDK create %s key: %+v %v", c.alg, sk, err)
			}
			algs, err := kms.Signing().ListSigningAlgorithms(infisical.KmsListSigningAlgorithmsOptions{KeyId: sk.KeyId})
			if err != nil || !slices.Contains(algs, c.sa) {
				t.Fatalf("SDK signing algorithms: %v %v", algs, err)
			}
			data := base64.StdEncoding.EncodeToString([]byte("artifact sha: 1234"))
			sig, err := kms.Signing().SignData(infisical.KmsSignDataOptions{KeyId: sk.KeyId, Data: data, SigningAlgorithm: c.sa})
			if err != nil || len(sig) == 0 {
				t.Fatalf("SDK sign: %v", err)
			}
			res, err := kms.Signing().VerifyData(infisical.KmsVerifyDataOptions{KeyId: sk.KeyId, Data: data,
				Signature: base64.StdEncoding.EncodeToString(sig), SigningAlgorithm: c.sa})
			if err != nil || !res.SignatureValid || res.KeyId != sk.KeyId || res.SigningAlgorithm != c.sa {
				t.Fatalf("SDK verify: %+v %v", res, err)
			}
			sig[len(sig)/2] ^= 1
			res, err = kms.Signing().VerifyData(infisical.KmsVerifyDataOptions{KeyId: sk.KeyId, Data: data,
				Signature: base64.StdEncoding.EncodeToString(sig), SigningAlgorithm: c.sa})
			if err != nil || res.SignatureValid {
				t.Fatalf("SDK verify of a tampered signature: %+v %v", res, err)
			}
			pub, err := kms.Signing().GetPublicKey(infisical.KmsGetPublicKeyOptions{KeyId: sk.KeyId})
			if err != nil || pub == "" {
				t.Fatalf("SDK public key: %q %v", pub, err)
			}
		}

		deleted, err := kms.Keys().Delete(infisical.KmsDeleteKeyOptions{KeyId: key.KeyId})
		if err != nil || deleted.KeyId != key.KeyId {
			t.Fatalf("SDK delete: %+v %v", deleted, err)
		}
		if _, err := kms.DecryptData(infisical.KmsDecryptDataOptions{KeyId: key.KeyId, Ciphertext: ct}); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("SDK decrypt after delete: %v", err)
		}
		if _, err := kms.Keys().GetByName(infisical.KmsGetKeyByNameOptions{KeyName: "payments", ProjectId: p.ID}); err == nil {
			t.Fatal("SDK finds a deleted key")
		}
	})
}

// Signatures lockbox makes verify with OpenSSL against the public key it
// publishes: RSA-PSS (salt as long as the hash) and ECDSA (DER).
func TestKMSSignaturesVerifyWithOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is required under CI=true")
		}
		t.Skip("openssl not installed")
	}
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "openssl"})
	dir := t.TempDir()
	data := []byte("the release tarball, say\n")
	dataFile := filepath.Join(dir, "data")
	os.WriteFile(dataFile, data, 0o600)
	for _, c := range []struct {
		alg, sa, digest string
		opts            []string
	}{
		{"RSA_4096", "RSASSA_PSS_SHA_256", "-sha256", []string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"}},
		{"RSA_4096", "RSASSA_PSS_SHA_512", "-sha512", []string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:64"}},
		{"RSA_4096", "RSASSA_PKCS1_V1_5_SHA_384", "-sha384", nil},
		{"ECC_NIST_P256", "ECDSA_SHA_256", "-sha256", nil},
		{"ECC_NIST_P256", "ECDSA_SHA_384", "-sha384", nil},
	} {
		name := strings.ToLower(strings.ReplaceAll(c.sa, "_", "-"))
		k := createKMSKey(t, e, e.Token, p.ID, name, "sign-verify", c.alg)
		var pub struct{ PublicKey string }
		e.Must(t, 200, "GET", "/api/v1/kms/keys/"+k.ID+"/public-key", e.Token, nil).Decode(t, &pub)
		der, err := base64.StdEncoding.DecodeString(pub.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pubFile := filepath.Join(dir, name+".pem")
		os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
		var sig struct{ Signature string }
		e.Must(t, 200, "POST", "/api/v1/kms/keys/"+k.ID+"/sign", e.Token, map[string]any{"data": base64.StdEncoding.EncodeToString(data),
			"signingAlgorithm": c.sa}).Decode(t, &sig)
		raw, _ := base64.StdEncoding.DecodeString(sig.Signature)
		sigFile := filepath.Join(dir, name+".sig")
		os.WriteFile(sigFile, raw, 0o600)
		verify := func() (string, error) {
			args := append([]string{"dgst", c.digest, "-verify", pubFile, "-signature", sigFile}, c.opts...)
			out, err := exec.CommandContext(t.Context(), "openssl", append(args, dataFile)...).CombinedOutput()
			return string(out), err
		}
		if out, err := verify(); err != nil || !strings.Contains(out, "Verified OK") {
			t.Fatalf("%s: openssl does not verify lockbox's signature: %v\n%s", c.sa, err, out)
		}
		// The check has teeth: a changed signature fails in OpenSSL too.
		raw[len(raw)-3] ^= 1
		os.WriteFile(sigFile, raw, 0o600)
		if out, err := verify(); err == nil || strings.Contains(out, "Verified OK") {
			t.Fatalf("%s: openssl accepts a tampered signature:\n%s", c.sa, out)
		}
	}
}
