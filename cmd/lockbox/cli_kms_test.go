package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// kmsKey creates a key with the CLI and returns it as the JSON output shows it.
func kmsKey(t *testing.T, c *cliEnv, env []string, args ...string) client.KMSKey {
	t.Helper()
	var k client.KMSKey
	out := c.must(env, append([]string{"kms", "keys", "create", "-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.ID == "" {
		t.Fatalf("keys create %v: %v\n%s", args, err, out)
	}
	return k
}

// noSecrets fails if a command's output carries an access token.
func noSecrets(t *testing.T, r result) {
	t.Helper()
	if jwtRE.MatchString(r.stdout) || jwtRE.MatchString(r.stderr) {
		t.Fatal("a token reached the command's output")
	}
}

func TestCLIKMSEncryptDecrypt(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	dir := t.TempDir()

	k := kmsKey(t, c, admin, "--project", project, "--name", "app", "--description", "for the app")
	if k.Name != "app" || k.KeyUsage != "encrypt-decrypt" || k.EncryptionAlgorithm != "aes-256-gcm" || k.Version != 1 || k.ProjectID != project {
		t.Fatalf("created key %+v", k)
	}
	kmsKey(t, c, admin, "--project", project, "--name", "other", "--algorithm", "aes-128-gcm")
	if out := c.must(admin, "kms", "keys", "list", "--project", project); !strings.Contains(out, "app") || !strings.Contains(out, "other") ||
		!strings.Contains(out, "aes-128-gcm") || !strings.Contains(out, "for the app") {
		t.Fatalf("keys list:\n%s", out)
	}
	var listed struct {
		Keys       []client.KMSKey
		TotalCount int
	}
	json.Unmarshal([]byte(c.must(admin, "kms", "keys", "list", "--project", project, "--search", "ap", "-o", "json")), &listed)
	if listed.TotalCount != 1 || len(listed.Keys) != 1 || listed.Keys[0].ID != k.ID {
		t.Fatalf("keys list --search ap: %+v", listed)
	}
	r := c.run(admin, "kms", "keys", "list", "--project", project, "--limit", "1")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stderr, "showing 1 of 2 keys") {
		t.Fatalf("keys list --limit 1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var got client.KMSKey
	json.Unmarshal([]byte(c.must(admin, "kms", "keys", "get", "--name", "app", "--project", project, "-o", "json")), &got)
	if got.ID != k.ID {
		t.Fatalf("get by name: %+v", got)
	}
	json.Unmarshal([]byte(c.must(admin, "kms", "keys", "get", k.ID, "-o", "json")), &got)
	if got.Name != "app" {
		t.Fatalf("get by id: %+v", got)
	}

	// Through standard input: binary plaintext comes back byte for byte with
	// --raw, and as its base64 without.
	pt := []byte("line one\n\x00\xff binary\r\n")
	r = c.runIn(pt, admin, "kms", "encrypt", k.ID)
	if r.code != 0 {
		t.Fatalf("encrypt from stdin: exit %d: %s", r.code, r.stderr)
	}
	noSecrets(t, r)
	ct1 := strings.TrimSpace(r.stdout)
	if _, err := base64.StdEncoding.DecodeString(ct1); err != nil || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("encrypt prints one base64 line, got %q", r.stdout)
	}
	if r := c.runIn([]byte(ct1+"\n"), admin, "kms", "decrypt", k.ID, "--raw"); r.code != 0 || r.stdout != string(pt) {
		t.Fatalf("decrypt --raw from stdin: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	if r := c.runIn([]byte(ct1), admin, "kms", "decrypt", k.ID, "-"); r.code != 0 || r.stdout != base64.StdEncoding.EncodeToString(pt)+"\n" {
		t.Fatalf("decrypt (base64) from stdin: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}

	// Through files, the key named by --name; --in and a FILE argument are the same.
	ptFile := filepath.Join(dir, "plain")
	os.WriteFile(ptFile, pt, 0o600)
	ctFile := filepath.Join(dir, "cipher")
	os.WriteFile(ctFile, []byte(c.must(admin, "kms", "encrypt", "--name", "app", "--project", project, ptFile)), 0o600)
	if out := c.must(admin, "kms", "decrypt", "--name", "app", "--project", project, "--in", ctFile, "--raw"); out != string(pt) {
		t.Fatalf("decrypt of a file: %q", out)
	}
	var js struct{ KeyID, Plaintext string }
	json.Unmarshal([]byte(c.must(admin, "kms", "decrypt", k.ID, ctFile, "-o", "json")), &js)
	if js.KeyID != k.ID || js.Plaintext != base64.StdEncoding.EncodeToString(pt) {
		t.Fatalf("decrypt -o json: %+v", js)
	}
	if r := c.run(admin, "kms", "decrypt", k.ID, ctFile, "--in", ctFile); r.code == 0 || !strings.Contains(r.stderr, "not both") {
		t.Fatalf("FILE and --in: exit %d, %s", r.code, r.stderr)
	}

	// Rotation: version 2 encrypts, the version-1 ciphertext still decrypts.
	var rotated client.KMSKey
	json.Unmarshal([]byte(c.must(admin, "kms", "keys", "rotate", k.ID, "-o", "json")), &rotated)
	if rotated.Version != 2 {
		t.Fatalf("rotate: %+v", rotated)
	}
	if r := c.runIn([]byte(ct1), admin, "kms", "decrypt", k.ID, "--raw"); r.code != 0 || r.stdout != string(pt) {
		t.Fatalf("decrypt of a version-1 ciphertext after rotation: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	ct2 := strings.TrimSpace(string(c.runIn(pt, admin, "kms", "encrypt", k.ID).stdout))
	if b, _ := base64.StdEncoding.DecodeString(ct2); !bytes.HasSuffix(b, []byte("v02")) {
		t.Fatalf("a ciphertext after rotation does not name version 2: %q", ct2)
	}
	if r := c.runIn([]byte(ct2), admin, "kms", "decrypt", k.ID, "--raw"); r.stdout != string(pt) {
		t.Fatalf("decrypt of a version-2 ciphertext: %q %s", r.stdout, r.stderr)
	}

	// Rewrap moves the version-1 ciphertext to version 2; version 1 can then
	// be retired (with --yes only), after which only the rewrapped one decrypts.
	var rw struct {
		KeyID, Ciphertext string
		Version           int
	}
	json.Unmarshal([]byte(c.must(admin, "kms", "rewrap", k.ID, ctFile, "-o", "json")), &rw)
	if rw.Version != 2 || rw.Ciphertext == "" {
		t.Fatalf("rewrap: %+v", rw)
	}
	if r := c.run(admin, "kms", "keys", "retire-version", k.ID, "1"); r.code == 0 || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("retire-version without --yes: exit %d, %s", r.code, r.stderr)
	}
	if r := c.runIn([]byte(ct1), admin, "kms", "decrypt", k.ID, "--raw"); r.code != 0 {
		t.Fatalf("a refused retire-version destroyed version 1: %s", r.stderr)
	}
	if r := c.run(admin, "kms", "keys", "retire-version", k.ID, "2", "--yes"); r.code == 0 || !strings.Contains(r.stderr, "newest version") {
		t.Fatalf("retiring the newest version: exit %d, %s", r.code, r.stderr)
	}
	c.must(admin, "kms", "keys", "retire-version", k.ID, "1", "--yes")
	if r := c.runIn([]byte(ct1), admin, "kms", "decrypt", k.ID, "--raw"); r.code == 0 {
		t.Fatal("a ciphertext of a retired version still decrypts")
	}
	if r := c.runIn([]byte(rw.Ciphertext), admin, "kms", "decrypt", k.ID, "--raw"); r.code != 0 || r.stdout != string(pt) {
		t.Fatalf("the rewrapped ciphertext after retiring version 1: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}

	// Refusals print the server's message and exit non-zero.
	// One bit of the ciphertext's bytes changed, still valid base64 (a bit
	// flipped in the base64 text itself may make a character that is not).
	raw1, _ := base64.StdEncoding.DecodeString(ct1)
	raw1[5] ^= 1
	tampered := []byte(base64.StdEncoding.EncodeToString(raw1))
	for _, tc := range []struct {
		name  string
		stdin []byte
		args  []string
		want  string
	}{
		{"another key's ciphertext", []byte(ct1), []string{"kms", "decrypt", "--name", "other", "--project", project}, "400"},
		{"a tampered ciphertext", tampered, []string{"kms", "decrypt", k.ID}, "400"},
		{"not base64", []byte("*not base64*"), []string{"kms", "decrypt", k.ID}, "the ciphertext is not base64"},
		{"an unknown key", pt, []string{"kms", "encrypt", "0b9e3c0e-7b8e-4e6f-9d2a-2c1b0f6a1e11"}, "Key with ID '0b9e3c0e-7b8e-4e6f-9d2a-2c1b0f6a1e11' not found"},
		{"an unknown name", pt, []string{"kms", "encrypt", "--name", "nope", "--project", project}, `Key with name "nope" not found`},
		{"too much data", bytes.Repeat([]byte{1}, 4097), []string{"kms", "encrypt", k.ID}, "more than 4096 bytes"},
		{"a taken name", nil, []string{"kms", "keys", "create", "--project", project, "--name", "app"}, `A KMS key with the name "app" already exists`},
		{"a bad algorithm", nil, []string{"kms", "keys", "create", "--project", project, "--name", "x", "--algorithm", "des"}, "Valid options are: aes-256-gcm, aes-128-gcm"},
		{"no key", nil, []string{"kms", "encrypt"}, "give the key's ID, or --name and --project"},
		{"--name without --project", nil, []string{"kms", "encrypt", "--name", "app"}, "--name needs --project"},
		{"delete without --yes", nil, []string{"kms", "keys", "delete", k.ID}, "pass --yes"},
	} {
		r := c.runIn(tc.stdin, admin, tc.args...)
		if r.code == 0 || !strings.HasPrefix(r.stderr, "lockbox: ") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", tc.name, r.code, r.stderr, tc.want)
		}
		noSecrets(t, r)
	}

	// A viewer reads keys but may not encrypt: the server's 403 is shown.
	viewer := viewerEnv(t, c, admin, project)
	if out := c.must(viewer, "kms", "keys", "get", k.ID); !strings.Contains(out, "app") {
		t.Fatalf("viewer get:\n%s", out)
	}
	r = c.runIn(pt, viewer, "kms", "encrypt", k.ID)
	if r.code == 0 || !strings.Contains(r.stderr, "403") || !strings.Contains(r.stderr, "You are not allowed to encrypt") {
		t.Fatalf("viewer encrypt: exit %d, %s", r.code, r.stderr)
	}
	noSecrets(t, r)

	// Deleting needs --yes; afterwards the key is gone.
	c.must(admin, "kms", "keys", "delete", k.ID, "--yes")
	if r := c.runIn([]byte(ct1), admin, "kms", "decrypt", k.ID); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("decrypt with a deleted key: exit %d, %s", r.code, r.stderr)
	}
}

// viewerEnv makes an identity with the viewer role in project and returns
// the environment that logs the CLI in as it.
func viewerEnv(t *testing.T, c *cliEnv, admin []string, project string) []string {
	t.Helper()
	id := strings.TrimSpace(c.must(admin, "identities", "create", "viewer", "--role", "member", "--plain"))
	c.must(admin, "projects", "add-identity", project, id, "--role", "viewer")
	clientID := strings.TrimSpace(c.must(admin, "identities", "universal-auth", "attach", id, "--plain"))
	secret := strings.TrimSpace(c.must(admin, "identities", "client-secrets", "create", id, "--plain"))
	return []string{"LOCKBOX_UNIVERSAL_AUTH_CLIENT_ID=" + clientID, "LOCKBOX_UNIVERSAL_AUTH_CLIENT_SECRET=" + secret}
}

func TestCLIKMSSignVerify(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	dir := t.TempDir()
	data := []byte("release v1.2.3\n")
	dataFile := filepath.Join(dir, "data")
	os.WriteFile(dataFile, data, 0o600)
	changed := bytes.Clone(data)
	changed[0] ^= 1

	for _, tc := range []struct{ alg, sigAlg string }{
		{"ecc-nist-p256", "ECDSA_SHA_256"},
		{"rsa-4096", "RSASSA_PSS_SHA_256"},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			name := "sig-" + tc.alg
			k := kmsKey(t, c, admin, "--project", project, "--name", name, "--usage", "sign-verify", "--algorithm", tc.alg)
			if algs := c.must(admin, "kms", "signing-algorithms", k.ID); !strings.Contains(algs, tc.sigAlg) {
				t.Fatalf("signing-algorithms:\n%s", algs)
			}
			sig := strings.TrimSpace(c.must(admin, "kms", "sign", k.ID, "--algorithm", tc.sigAlg, dataFile))
			verify := func(stdin []byte, args ...string) result {
				return c.runIn(stdin, admin, append([]string{"kms", "verify", k.ID, "--algorithm", tc.sigAlg}, args...)...)
			}
			if r := verify(data, "--signature", sig); r.code != 0 || r.stdout != "valid\n" {
				t.Fatalf("verify: exit %d, %q, %s", r.code, r.stdout, r.stderr)
			}
			if r := verify(changed, "--signature", sig); r.code != 1 || r.stdout != "invalid\n" || r.stderr != "" {
				t.Fatalf("verify of changed data: exit %d, %q, %q", r.code, r.stdout, r.stderr)
			}
			// --raw writes the signature's bytes; --signature-file takes them, or base64.
			rawFile := filepath.Join(dir, name+".sig")
			os.WriteFile(rawFile, []byte(c.must(admin, "kms", "sign", "--name", name, "--project", project, "--algorithm", tc.sigAlg, "--raw", "--in", dataFile)), 0o600)
			b64File := filepath.Join(dir, name+".b64")
			os.WriteFile(b64File, []byte(sig+"\n"), 0o600)
			for _, f := range []string{rawFile, b64File} {
				if r := verify(nil, "--signature-file", f, dataFile); r.code != 0 || r.stdout != "valid\n" {
					t.Fatalf("verify --signature-file %s: exit %d, %q, %s", f, r.code, r.stdout, r.stderr)
				}
			}
			raw, _ := os.ReadFile(rawFile)
			raw[len(raw)-1] ^= 1
			os.WriteFile(rawFile, raw, 0o600)
			if r := verify(data, "--signature-file", rawFile); r.code != 1 || r.stdout != "invalid\n" {
				t.Fatalf("verify of a changed signature: exit %d, %q, %s", r.code, r.stdout, r.stderr)
			}
			// --digest signs a SHA-256 made elsewhere; the signature is the data's.
			sum := sha256.Sum256(data)
			dsig := strings.TrimSpace(string(c.runIn(sum[:], admin, "kms", "sign", k.ID, "--algorithm", tc.sigAlg, "--digest").stdout))
			if r := verify(data, "--signature", dsig); r.code != 0 {
				t.Fatalf("a signature of the digest does not verify for the data: %q %s", r.stdout, r.stderr)
			}
			if r := verify(sum[:], "--signature", sig, "--digest"); r.code != 0 {
				t.Fatalf("verify --digest: %q %s", r.stdout, r.stderr)
			}
			var vj struct {
				SignatureValid bool
				KeyID          string
			}
			r := verify(changed, "--signature", sig, "-o", "json")
			json.Unmarshal([]byte(r.stdout), &vj)
			if r.code != 1 || vj.SignatureValid || vj.KeyID != k.ID {
				t.Fatalf("verify -o json of changed data: exit %d, %s", r.code, r.stdout)
			}

			// The PEM public key verifies the signature without lockbox.
			block, _ := pem.Decode([]byte(c.must(admin, "kms", "public-key", "--name", name, "--project", project)))
			if block == nil || block.Type != "PUBLIC KEY" {
				t.Fatal("public-key is not PEM")
			}
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if der := c.must(admin, "kms", "public-key", k.ID, "--der"); der != string(block.Bytes) {
				t.Fatal("--der differs from the PEM's bytes")
			}
			if ec, ok := pub.(*ecdsa.PublicKey); ok {
				s, _ := base64.StdEncoding.DecodeString(sig)
				if !ecdsa.VerifyASN1(ec, sum[:], s) {
					t.Fatal("the ECDSA signature does not verify with the public key")
				}
			}

			for _, bad := range []struct {
				args []string
				want string
			}{
				{[]string{"kms", "sign", k.ID, dataFile}, "--algorithm is required"},
				{[]string{"kms", "sign", k.ID, "--algorithm", "HMAC_SHA_256", dataFile}, "signingAlgorithm must be one of"},
				{[]string{"kms", "verify", k.ID, "--algorithm", tc.sigAlg, dataFile}, "--signature"},
				{[]string{"kms", "keys", "rotate", k.ID}, "only encryption keys rotate"},
				{[]string{"kms", "encrypt", k.ID, dataFile}, "is not intended for"},
			} {
				if r := c.run(admin, bad.args...); r.code == 0 || !strings.Contains(r.stderr, bad.want) {
					t.Errorf("%v: exit %d, %q, want %q", bad.args, r.code, r.stderr, bad.want)
				}
			}
		})
	}
}
