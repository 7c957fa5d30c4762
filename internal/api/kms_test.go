package api_test

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/keygen"
	"github.com/lockbox-dev/lockbox/internal/kms"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type kmsKeyOut struct {
	ID, Description, OrgID, Name, ProjectID, KeyUsage, EncryptionAlgorithm, CreatedAt, UpdatedAt string
	IsDisabled                                                                                   bool
	Version                                                                                      int
}

func createKMSKey(t testing.TB, e *apptest.Env, token, projectID, name, usage, alg string) kmsKeyOut {
	t.Helper()
	var out struct{ Key kmsKeyOut }
	e.Must(t, 200, "POST", "/api/v1/kms/keys", token, map[string]any{"projectId": projectID, "name": name, "description": "for " + name,
		"keyUsage": usage, "encryptionAlgorithm": alg}).Decode(t, &out)
	return out.Key
}

func kmsEncrypt(t testing.TB, e *apptest.Env, token, keyID string, pt []byte) string {
	t.Helper()
	var out struct{ Ciphertext string }
	e.Must(t, 200, "POST", "/api/v1/kms/keys/"+keyID+"/encrypt", token, map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)}).Decode(t, &out)
	return out.Ciphertext
}

func kmsDecrypt(t testing.TB, e *apptest.Env, token, keyID, ct string) []byte {
	t.Helper()
	var out struct{ Plaintext string }
	r := e.Must(t, 200, "POST", "/api/v1/kms/keys/"+keyID+"/decrypt", token, map[string]any{"ciphertext": ct})
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("a decryption's answer may be stored: Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	r.Decode(t, &out)
	pt, err := base64.StdEncoding.DecodeString(out.Plaintext)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

// flip returns base64 ciphertext or signature b64 with one bit of byte i changed.
func flip(t testing.TB, b64 string, i int) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

func TestKMSEncryptionKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "vault"})
		for _, alg := range []string{"aes-256-gcm", "aes-128-gcm", ""} {
			name := "enc-" + strings.TrimSuffix(alg, "-gcm")
			if alg == "" {
				name = "enc-default"
			}
			k := createKMSKey(t, e, e.Token, p.ID, name, "", alg)
			want := alg
			if want == "" {
				want = "aes-256-gcm"
			}
			if k.ID == "" || k.Name != name || k.ProjectID != p.ID || k.OrgID != e.OrgID || k.KeyUsage != "encrypt-decrypt" ||
				k.EncryptionAlgorithm != want || k.Version != 1 || k.IsDisabled || k.Description != "for "+name || k.CreatedAt == "" {
				t.Fatalf("created %+v", k)
			}
			for _, pt := range [][]byte{{}, []byte("hello, world"), []byte(strings.Repeat("\x00\xff", 2048))} {
				ct := kmsEncrypt(t, e, e.Token, k.ID, pt)
				if got := kmsDecrypt(t, e, e.Token, k.ID, ct); string(got) != string(pt) {
					t.Fatalf("%s round trip: %q", alg, got)
				}
				raw, _ := base64.StdEncoding.DecodeString(ct)
				if !strings.HasSuffix(string(raw), "v01") || strings.Contains(string(raw), "hello") {
					t.Fatalf("ciphertext %q", raw)
				}
			}
		}
		// Get, get by name, list with search, paging and order, update.
		var got struct{ Key kmsKeyOut }
		e.Must(t, 200, "GET", "/api/v1/kms/keys/key-name/enc-aes-128?projectId="+p.ID, e.Token, nil).Decode(t, &got)
		if got.Key.EncryptionAlgorithm != "aes-128-gcm" {
			t.Fatalf("by name %+v", got.Key)
		}
		e.Must(t, 200, "GET", "/api/v1/kms/keys/"+got.Key.ID, e.Token, nil).Decode(t, &got)
		if got.Key.Name != "enc-aes-128" {
			t.Fatalf("by id %+v", got.Key)
		}
		var list struct {
			Keys       []kmsKeyOut
			TotalCount int
		}
		e.Must(t, 200, "GET", "/api/v1/kms/keys?projectId="+p.ID, e.Token, nil).Decode(t, &list)
		if list.TotalCount != 3 || len(list.Keys) != 3 || list.Keys[0].Name != "enc-aes-128" || list.Keys[2].Name != "enc-default" {
			t.Fatalf("list %+v", list)
		}
		e.Must(t, 200, "GET", "/api/v1/kms/keys?projectId="+p.ID+"&search=AES&limit=1&offset=1&orderBy=name&orderDirection=desc", e.Token, nil).Decode(t, &list)
		if list.TotalCount != 2 || len(list.Keys) != 1 || list.Keys[0].Name != "enc-aes-128" {
			t.Fatalf("searched list %+v", list)
		}
		e.Must(t, 200, "GET", "/api/v1/kms/keys?projectId="+p.ID+"&search=%25", e.Token, nil).Decode(t, &list)
		if list.TotalCount != 0 {
			t.Fatalf("a %% search matched %+v", list)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/kms/keys?projectId="+p.ID+"&limit=101", e.Token, nil), 422, "ValidationFailure")
		e.Must(t, 200, "PATCH", "/api/v1/kms/keys/"+got.Key.ID, e.Token, map[string]any{"name": "renamed", "description": "new", "KeyId": got.Key.ID}).Decode(t, &got)
		if got.Key.Name != "renamed" || got.Key.Description != "new" {
			t.Fatalf("updated %+v", got.Key)
		}
		assertError(t, e.Do(t, "PATCH", "/api/v1/kms/keys/"+got.Key.ID, e.Token, map[string]any{"name": "enc-default"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys", e.Token, map[string]any{"projectId": p.ID, "name": "renamed"}), 400, "BadRequest")
		for _, bad := range []map[string]any{
			{"projectId": p.ID, "name": "Not A Slug"},
			{"projectId": p.ID, "name": strings.Repeat("a", 33)},
			{"projectId": p.ID, "name": "x", "keyUsage": "sign-verify", "encryptionAlgorithm": "aes-256-gcm"},
			{"projectId": p.ID, "name": "x", "encryptionAlgorithm": "RSA_4096"},
			{"projectId": p.ID, "name": "x", "keyUsage": "wrap"},
			{"name": "x"},
		} {
			assertError(t, e.Do(t, "POST", "/api/v1/kms/keys", e.Token, bad), 422, "ValidationFailure")
		}
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+got.Key.ID+"/encrypt", e.Token, map[string]any{"plaintext": "not base64!"}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+got.Key.ID+"/encrypt", e.Token, map[string]any{}), 422, "ValidationFailure")
		big := base64.StdEncoding.EncodeToString(make([]byte, 4097))
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+got.Key.ID+"/encrypt", e.Token, map[string]any{"plaintext": big}), 422, "ValidationFailure")
	})
}

func TestKMSSigningKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "signer"})
		for _, c := range []struct{ alg, want string }{{"rsa-4096", "RSA_4096"}, {"ECC_NIST_P256", "ECC_NIST_P256"}} {
			k := createKMSKey(t, e, e.Token, p.ID, strings.ToLower(strings.ReplaceAll(c.want, "_", "-")), "sign-verify", c.alg)
			if k.EncryptionAlgorithm != c.want || k.KeyUsage != "sign-verify" {
				t.Fatalf("created %+v", k)
			}
			var algs struct{ SigningAlgorithms []string }
			e.Must(t, 200, "GET", "/api/v1/kms/keys/"+k.ID+"/signing-algorithms", e.Token, nil).Decode(t, &algs)
			want := []string{"ECDSA_SHA_512", "ECDSA_SHA_384", "ECDSA_SHA_256"}
			if c.want == "RSA_4096" {
				want = []string{"RSASSA_PSS_SHA_512", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_256",
					"RSASSA_PKCS1_V1_5_SHA_512", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_256"}
			}
			if !slices.Equal(algs.SigningAlgorithms, want) {
				t.Fatalf("%s signing algorithms %v", c.want, algs.SigningAlgorithms)
			}
			var pub struct{ PublicKey string }
			e.Must(t, 200, "GET", "/api/v1/kms/keys/"+k.ID+"/public-key", e.Token, nil).Decode(t, &pub)
			der, _ := base64.StdEncoding.DecodeString(pub.PublicKey)
			if _, err := x509.ParsePKIXPublicKey(der); err != nil {
				t.Fatalf("public key: %v", err)
			}
			data := []byte("release v1.2.3")
			for _, sa := range want {
				var sig struct{ Signature, KeyID, SigningAlgorithm string }
				e.Must(t, 200, "POST", "/api/v1/kms/keys/"+k.ID+"/sign", e.Token, map[string]any{"KeyId": k.ID, "data": base64.StdEncoding.EncodeToString(data),
					"signingAlgorithm": sa}).Decode(t, &sig)
				if sig.KeyID != k.ID || sig.SigningAlgorithm != sa {
					t.Fatalf("sign answer %+v", sig)
				}
				verify := func(data []byte, signature string, isDigest bool) bool {
					var v struct {
						SignatureValid          bool
						KeyID, SigningAlgorithm string
					}
					e.Must(t, 200, "POST", "/api/v1/kms/keys/"+k.ID+"/verify", e.Token, map[string]any{"data": base64.StdEncoding.EncodeToString(data),
						"signature": signature, "signingAlgorithm": sa, "isDigest": isDigest}).Decode(t, &v)
					if v.KeyID != k.ID || v.SigningAlgorithm != sa {
						t.Fatalf("verify answer %+v", v)
					}
					return v.SignatureValid
				}
				digest := digestFor(sa, data)
				if !verify(data, sig.Signature, false) || !verify(digest, sig.Signature, true) {
					t.Fatalf("%s: own signature does not verify", sa)
				}
				// A tampered signature or other data verify false, cleanly.
				if verify(data, flip(t, sig.Signature, 10), false) || verify([]byte("release v1.2.4"), sig.Signature, false) {
					t.Fatalf("%s: tampered input verifies", sa)
				}
				// Signing a digest.
				e.Must(t, 200, "POST", "/api/v1/kms/keys/"+k.ID+"/sign", e.Token, map[string]any{"data": base64.StdEncoding.EncodeToString(digest),
					"signingAlgorithm": sa, "isDigest": true}).Decode(t, &sig)
				if !verify(data, sig.Signature, false) {
					t.Fatalf("%s: a digest's signature does not verify", sa)
				}
				assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/sign", e.Token, map[string]any{"data": base64.StdEncoding.EncodeToString(data),
					"signingAlgorithm": sa, "isDigest": true}), 400, "BadRequest")
			}
			other := "ECDSA_SHA_256"
			if c.want != "RSA_4096" {
				other = "RSASSA_PSS_SHA_256"
			}
			assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/sign", e.Token, map[string]any{"data": "eA==", "signingAlgorithm": other}), 400, "BadRequest")
			assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/sign", e.Token, map[string]any{"data": "eA==", "signingAlgorithm": "MD5"}), 422, "ValidationFailure")
			// A signing key neither encrypts nor rotates.
			assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/encrypt", e.Token, map[string]any{"plaintext": "eA=="}), 400, "BadRequest")
			assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/rotate", e.Token, nil), 400, "BadRequest")
		}
	})
}

// countRows runs a COUNT query on the server's database through a connection of its own.
func countRows(t *testing.T, e *apptest.Env, query string) int {
	t.Helper()
	driver, dsn := "sqlite", "file:"+e.DB.Path()+"?mode=ro&_pragma=busy_timeout(5000)"
	if e.DB.Dialect() == store.Postgres {
		driver, dsn = "pgx", e.DBURL()
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func digestFor(sa string, data []byte) []byte {
	switch {
	case strings.HasSuffix(sa, "512"):
		s := sha512.Sum512(data)
		return s[:]
	case strings.HasSuffix(sa, "384"):
		s := sha512.Sum384(data)
		return s[:]
	}
	s := sha256.Sum256(data)
	return s[:]
}

func TestKMSRefusals(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "alpha"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "bravo"})
		ka := createKMSKey(t, e, e.Token, a.ID, "alpha-key", "encrypt-decrypt", "aes-256-gcm")
		ka2 := createKMSKey(t, e, e.Token, a.ID, "alpha-other", "encrypt-decrypt", "aes-256-gcm")
		kb := createKMSKey(t, e, e.Token, b.ID, "bravo-key", "encrypt-decrypt", "aes-256-gcm")
		ct := kmsEncrypt(t, e, e.Token, ka.ID, []byte("top secret"))

		// Tampered ciphertexts: every part of the blob is checked, and each failure is a 400.
		raw, _ := base64.StdEncoding.DecodeString(ct)
		for _, i := range []int{0, 11, 12, len(raw) - 20, len(raw) - 4, len(raw) - 1} {
			assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka.ID+"/decrypt", e.Token, map[string]any{"ciphertext": flip(t, ct, i)}), 400, "BadRequest")
		}
		for _, bad := range []string{"", "AAAA", base64.StdEncoding.EncodeToString(append(raw[:len(raw)-3], "v02"...)),
			base64.StdEncoding.EncodeToString(append(append(raw[:len(raw)-3], 0, 0, 0, 9), "v02"...))} {
			assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka.ID+"/decrypt", e.Token, map[string]any{"ciphertext": bad}), 400, "BadRequest")
		}
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka.ID+"/decrypt", e.Token, map[string]any{"ciphertext": "%%%"}), 422, "ValidationFailure")
		// Another key's ciphertext.
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka2.ID+"/decrypt", e.Token, map[string]any{"ciphertext": ct}), 400, "BadRequest")
		// Wrong key ids.
		for _, id := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid"} {
			assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+id+"/decrypt", e.Token, map[string]any{"ciphertext": ct}), 404, "NotFound")
			assertError(t, e.Do(t, "GET", "/api/v1/kms/keys/"+id, e.Token, nil), 404, "NotFound")
		}
		assertError(t, e.Do(t, "GET", "/api/v1/kms/keys/key-name/nope?projectId="+a.ID, e.Token, nil), 404, "NotFound")

		// A member of project A cannot use, see or change project B's key.
		_, memberA := projectMember(t, e, a.ID, "dev-a", "member")
		if got := kmsDecrypt(t, e, memberA, ka.ID, ct); string(got) != "top secret" {
			t.Fatalf("member decrypts %q", got)
		}
		ctB := kmsEncrypt(t, e, e.Token, kb.ID, []byte("bravo"))
		// Named by id, B's key is not found: its id neither confirms it exists
		// nor names its project.
		byID := map[string]apptest.Response{}
		for _, op := range []struct{ method, path string }{
			{"POST", "/decrypt"}, {"POST", "/encrypt"}, {"GET", ""}, {"PATCH", ""}, {"DELETE", ""}, {"POST", "/rotate"},
			{"POST", "/rewrap"}, {"POST", "/sign"}, {"POST", "/verify"}, {"GET", "/public-key"}, {"GET", "/signing-algorithms"},
		} {
			byID[op.method+" "+op.path] = e.Do(t, op.method, "/api/v1/kms/keys/"+kb.ID+op.path, memberA, map[string]any{
				"ciphertext": ctB, "plaintext": "eA==", "isDisabled": true, "data": "eA==", "signature": "eA==",
				"signingAlgorithm": "ECDSA_SHA_256"})
		}
		for op, r := range byID {
			assertError(t, r, 404, "NotFound")
			if strings.Contains(string(r.Body), b.ID) {
				t.Fatalf("member of A, %s on B's key: the answer names project B: %s", op, r.Body)
			}
		}
		// Named by project, B answers that A's member is not one of its members.
		for _, r := range []apptest.Response{
			e.Do(t, "GET", "/api/v1/kms/keys/key-name/bravo-key?projectId="+b.ID, memberA, nil),
			e.Do(t, "GET", "/api/v1/kms/keys?projectId="+b.ID, memberA, nil),
			e.Do(t, "POST", "/api/v1/kms/keys", memberA, map[string]any{"projectId": b.ID, "name": "intruder"}),
		} {
			assertError(t, r, 403, "PermissionDenied")
		}
		// B's key is untouched, and still decrypts.
		if got := kmsDecrypt(t, e, e.Token, kb.ID, ctB); string(got) != "bravo" {
			t.Fatalf("B's key after A's member tried it: %q", got)
		}
		// A viewer reads keys but may not encrypt, decrypt, change or delete them.
		_, viewer := projectMember(t, e, a.ID, "viewer-a", "viewer")
		e.Must(t, 200, "GET", "/api/v1/kms/keys/"+ka.ID, viewer, nil)
		e.Must(t, 200, "GET", "/api/v1/kms/keys?projectId="+a.ID, viewer, nil)
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka.ID+"/encrypt", viewer, map[string]any{"plaintext": "eA=="}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka.ID+"/decrypt", viewer, map[string]any{"ciphertext": ct}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka.ID+"/rotate", viewer, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka.ID+"/rewrap", viewer, map[string]any{"ciphertext": ct}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v1/kms/keys/"+ka.ID, viewer, map[string]any{"isDisabled": true}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v1/kms/keys/"+ka.ID, viewer, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys", viewer, map[string]any{"projectId": a.ID, "name": "viewers"}), 403, "PermissionDenied")
		// A cryptographic operator uses keys but cannot read or manage them.
		_, operator := projectMember(t, e, a.ID, "operator-a", "cryptographic-operator")
		if got := kmsDecrypt(t, e, operator, ka.ID, kmsEncrypt(t, e, operator, ka.ID, []byte("op"))); string(got) != "op" {
			t.Fatalf("operator round trip %q", got)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/kms/keys/"+ka.ID, operator, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v1/kms/keys/"+ka.ID, operator, nil), 403, "PermissionDenied")
		// A custom role with encrypt only.
		e.Must(t, 200, "POST", "/api/v1/projects/"+a.ID+"/roles", e.Token, map[string]any{"slug": "sealer", "name": "Sealer",
			"permissions": []map[string]any{{"subject": "cmek", "action": []string{"encrypt"}}}})
		_, sealer := projectMember(t, e, a.ID, "sealer-a", "sealer")
		kmsEncrypt(t, e, sealer, ka.ID, []byte("in"))
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka.ID+"/decrypt", sealer, map[string]any{"ciphertext": ct}), 403, "PermissionDenied")

		// A disabled key refuses every operation with a clear 400, and works again once enabled.
		e.Must(t, 200, "PATCH", "/api/v1/kms/keys/"+ka.ID, e.Token, map[string]any{"isDisabled": true})
		for _, op := range []string{"encrypt", "decrypt", "rotate", "rewrap"} {
			r := assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka.ID+"/"+op, memberA, map[string]any{"plaintext": "eA==", "ciphertext": ct}), 400, "BadRequest")
			if !strings.Contains(fmt.Sprint(r["message"]), "disabled") {
				t.Fatalf("%s on a disabled key: %v", op, r)
			}
		}
		// ... but a caller who may not use it learns nothing about its state.
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+ka.ID+"/encrypt", viewer, map[string]any{"plaintext": "eA=="}), 403, "PermissionDenied")
		e.Must(t, 200, "PATCH", "/api/v1/kms/keys/"+ka.ID, e.Token, map[string]any{"isDisabled": false})
		if got := kmsDecrypt(t, e, memberA, ka.ID, ct); string(got) != "top secret" {
			t.Fatalf("after enabling %q", got)
		}
	})
}

func TestKMSRotateRewrapDelete(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "rotating"})
		k := createKMSKey(t, e, e.Token, p.ID, "rolling", "encrypt-decrypt", "aes-128-gcm")
		v1 := kmsEncrypt(t, e, e.Token, k.ID, []byte("first"))
		var rotated struct{ Key kmsKeyOut }
		e.Must(t, 200, "POST", "/api/v1/kms/keys/"+k.ID+"/rotate", e.Token, nil).Decode(t, &rotated)
		if rotated.Key.Version != 2 || rotated.Key.ID != k.ID {
			t.Fatalf("rotated %+v", rotated.Key)
		}
		e.Must(t, 200, "POST", "/api/v1/kms/keys/"+k.ID+"/rotate", e.Token, nil).Decode(t, &rotated)
		v3 := kmsEncrypt(t, e, e.Token, k.ID, []byte("third"))
		raw, _ := base64.StdEncoding.DecodeString(v3)
		if !strings.HasSuffix(string(raw), "\x00\x00\x00\x03v02") {
			t.Fatalf("a version-3 ciphertext ends %q", raw[len(raw)-7:])
		}
		if string(kmsDecrypt(t, e, e.Token, k.ID, v1)) != "first" || string(kmsDecrypt(t, e, e.Token, k.ID, v3)) != "third" {
			t.Fatal("old or new ciphertext does not decrypt after rotation")
		}
		// Rewrap moves a version-1 ciphertext to version 3 without showing the plaintext.
		var rw struct {
			Ciphertext string
			Version    int
		}
		r := e.Must(t, 200, "POST", "/api/v1/kms/keys/"+k.ID+"/rewrap", e.Token, map[string]any{"ciphertext": v1})
		r.Decode(t, &rw)
		if rw.Version != 3 || strings.Contains(string(r.Body), base64.StdEncoding.EncodeToString([]byte("first"))) || strings.Contains(string(r.Body), "plaintext") {
			t.Fatalf("rewrap answered %s", r.Body)
		}
		raw, _ = base64.StdEncoding.DecodeString(rw.Ciphertext)
		if !strings.HasSuffix(string(raw), "\x00\x00\x00\x03v02") || string(kmsDecrypt(t, e, e.Token, k.ID, rw.Ciphertext)) != "first" {
			t.Fatalf("rewrapped ciphertext %q", raw)
		}
		// Retiring: the newest version cannot be; an older one can, once, and
		// its ciphertexts then never decrypt again, while the rewrapped one does.
		assertError(t, e.Do(t, "DELETE", "/api/v1/kms/keys/"+k.ID+"/versions/3", e.Token, nil), 400, "BadRequest")
		assertError(t, e.Do(t, "DELETE", "/api/v1/kms/keys/"+k.ID+"/versions/9", e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "DELETE", "/api/v1/kms/keys/"+k.ID+"/versions/x", e.Token, nil), 422, "ValidationFailure")
		_, viewerTok := projectMember(t, e, p.ID, "viewer-r", "viewer")
		assertError(t, e.Do(t, "DELETE", "/api/v1/kms/keys/"+k.ID+"/versions/1", viewerTok, nil), 403, "PermissionDenied")
		if string(kmsDecrypt(t, e, e.Token, k.ID, v1)) != "first" {
			t.Fatal("a refused retirement destroyed version 1")
		}
		var retired struct {
			Key            kmsKeyOut
			RetiredVersion int
		}
		e.Must(t, 200, "DELETE", "/api/v1/kms/keys/"+k.ID+"/versions/1", e.Token, nil).Decode(t, &retired)
		if retired.RetiredVersion != 1 || retired.Key.Version != 3 {
			t.Fatalf("retired %+v", retired)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/decrypt", e.Token, map[string]any{"ciphertext": v1}), 400, "BadRequest")
		assertError(t, e.Do(t, "DELETE", "/api/v1/kms/keys/"+k.ID+"/versions/1", e.Token, nil), 404, "NotFound")
		if string(kmsDecrypt(t, e, e.Token, k.ID, rw.Ciphertext)) != "first" || string(kmsDecrypt(t, e, e.Token, k.ID, v3)) != "third" {
			t.Fatal("a retirement of version 1 broke version 3")
		}

		// A ciphertext naming a version the key does not have yet is a 400.
		future := append(append(raw[:len(raw)-7:len(raw)-7], 0, 0, 0, 4), "v02"...)
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/decrypt", e.Token, map[string]any{"ciphertext": base64.StdEncoding.EncodeToString(future)}), 400, "BadRequest")

		// Every operation is audited with the key, never the data.
		var logs struct {
			AuditLogs []struct {
				Event struct {
					Type     string
					Metadata map[string]any
				}
				ProjectID string
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=100", e.Token, nil).Decode(t, &logs)
		seen := map[string]int{}
		for _, l := range logs.AuditLogs {
			if strings.Contains(l.Event.Type, "cmek") {
				seen[l.Event.Type]++
				if l.Event.Metadata["keyId"] != k.ID {
					t.Fatalf("event %s without the key: %v", l.Event.Type, l.Event.Metadata)
				}
				b, _ := json.Marshal(l.Event.Metadata)
				for _, secret := range []string{"first", "third", base64.StdEncoding.EncodeToString([]byte("first")), v1[:20]} {
					if strings.Contains(string(b), secret) {
						t.Fatalf("event %s carries data: %s", l.Event.Type, b)
					}
				}
			}
		}
		if seen["create-cmek"] != 1 || seen["cmek-encrypt"] != 2 || seen["cmek-rotate"] != 2 || seen["cmek-rewrap"] != 1 || seen["cmek-decrypt"] != 6 || seen["cmek-retire-version"] != 1 {
			t.Fatalf("audit events %v", seen)
		}

		// Deleting the key makes its ciphertexts undecryptable, even by a new key of the same name.
		var del struct{ Key kmsKeyOut }
		e.Must(t, 200, "DELETE", "/api/v1/kms/keys/"+k.ID, e.Token, map[string]any{"KeyId": k.ID}).Decode(t, &del)
		if del.Key.ID != k.ID {
			t.Fatalf("deleted %+v", del.Key)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/decrypt", e.Token, map[string]any{"ciphertext": v1}), 404, "NotFound")
		again := createKMSKey(t, e, e.Token, p.ID, "rolling", "encrypt-decrypt", "aes-128-gcm")
		for _, ct := range []string{v1, v3} {
			assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+again.ID+"/decrypt", e.Token, map[string]any{"ciphertext": ct}), 400, "BadRequest")
		}
		if n := countRows(t, e, `SELECT COUNT(*) FROM kms_key_versions WHERE key_id = '`+k.ID+`'`); n != 0 {
			t.Fatalf("%d versions' material left after delete", n)
		}
	})
}

// The encrypt and decrypt path reads nothing from the database once warm
// (the token, the permission set, the key row and its unwrapped material
// are cached), and a change on another node is seen on the next request.
// A key has at most kms.MaxKeyVersions versions: rotating past them is a
// 400, and every version still decrypts.
func TestKMSRotationIsBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "bounded"})
	k := createKMSKey(t, e, e.Token, p.ID, "many", "encrypt-decrypt", "aes-256-gcm")
	first := kmsEncrypt(t, e, e.Token, k.ID, []byte("v1"))
	for v := 2; v <= kms.MaxKeyVersions; v++ {
		e.Must(t, 200, "POST", "/api/v1/kms/keys/"+k.ID+"/rotate", e.Token, nil)
	}
	r := assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/rotate", e.Token, nil), 400, "BadRequest")
	if !strings.Contains(fmt.Sprint(r["message"]), "versions") {
		t.Fatalf("rotation past the bound: %v", r)
	}
	if got := kmsDecrypt(t, e, e.Token, k.ID, first); string(got) != "v1" {
		t.Fatalf("version 1 after %d rotations: %q", kms.MaxKeyVersions-1, got)
	}
}

func TestKMSHotPathIsCachedAndExact(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "hot"})
		k := createKMSKey(t, e, e.Token, p.ID, "hot", "encrypt-decrypt", "aes-256-gcm")
		ct := kmsEncrypt(t, e, e.Token, k.ID, []byte("warm"))
		kmsDecrypt(t, e, e.Token, k.ID, ct)
		_, misses := e.App.Cache.Stats()
		// Behind the caches' back (no epoch change), the key is disabled and
		// its material removed: a warm node still serves from memory, which
		// shows it read neither.
		rawExec(t, e, `UPDATE kms_keys SET is_disabled = TRUE WHERE id = '`+k.ID+`'`)
		rawExec(t, e, `DELETE FROM kms_key_versions WHERE key_id = '`+k.ID+`'`)
		for range 5 {
			kmsDecrypt(t, e, e.Token, k.ID, kmsEncrypt(t, e, e.Token, k.ID, []byte("warm")))
		}
		if _, after := e.App.Cache.Stats(); after != misses {
			t.Fatalf("warm encrypt/decrypt missed the caches %d times", after-misses)
		}
		// Once the epoch moves (as any write through lockbox moves it), the
		// next request sees the database as it is.
		if err := e.DB.BumpEpoch(t.Context()); err != nil {
			t.Fatal(err)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/decrypt", e.Token, map[string]any{"ciphertext": ct}), 400, "BadRequest")

		// A second node changes the key; the first sees it on its next request.
		k = createKMSKey(t, e, e.Token, p.ID, "hot2", "encrypt-decrypt", "aes-256-gcm")
		ct = kmsEncrypt(t, e, e.Token, k.ID, []byte("warm"))
		n2 := apptest.Start(t, d, apptest.Options{Share: e})
		n2.Must(t, 200, "PATCH", "/api/v1/kms/keys/"+k.ID, e.Token, map[string]any{"isDisabled": true})
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/decrypt", e.Token, map[string]any{"ciphertext": ct}), 400, "BadRequest")
		n2.Must(t, 200, "PATCH", "/api/v1/kms/keys/"+k.ID, e.Token, map[string]any{"isDisabled": false})
		kmsDecrypt(t, e, e.Token, k.ID, ct)
		n2.Must(t, 200, "DELETE", "/api/v1/kms/keys/"+k.ID, e.Token, nil)
		assertError(t, e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/decrypt", e.Token, map[string]any{"ciphertext": ct}), 404, "NotFound")
	})
}

// rawExec changes the server's database through a connection of its own,
// without advancing the cache epoch.
func rawExec(t *testing.T, e *apptest.Env, query string) {
	t.Helper()
	driver, dsn := "sqlite", "file:"+e.DB.Path()+"?_pragma=busy_timeout(5000)"
	if e.DB.Dialect() == store.Postgres {
		driver, dsn = "pgx", e.DBURL()
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		t.Fatal(err)
	}
}

// TestRSASignaturesAreBounded: an RSA-4096 signature is about 13 ms of one
// core, so RSA signs hold a slot of keygen.Signatures: with every slot
// taken a sign waits, then is a 429 with Retry-After; an ECC sign does not
// wait for one, and an RSA sign goes through once a slot frees (a
// cryptographic operator signing in 32 loops held another request 625 ms).
func TestRSASignaturesAreBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "sign-bound"})
	rsaKey := createKMSKey(t, e, e.Token, p.ID, "rsa", "sign-verify", "RSA_4096")
	ecKey := createKMSKey(t, e, e.Token, p.ID, "ec", "sign-verify", "ECC_NIST_P256")
	pool := keygen.Signatures
	wait0 := pool.Wait
	pool.Wait = 50 * time.Millisecond
	t.Cleanup(func() { pool.Wait = wait0 })
	var held []func()
	for range pool.Cap() {
		release, err := pool.Acquire(context.Background(), "test")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	sign := func(k kmsKeyOut, sa string) apptest.Response {
		return e.Do(t, "POST", "/api/v1/kms/keys/"+k.ID+"/sign", e.Token, map[string]any{"data": base64.StdEncoding.EncodeToString([]byte("x")),
			"signingAlgorithm": sa})
	}
	r := sign(rsaKey, "RSASSA_PSS_SHA_256")
	assertError(t, r, 429, "RateLimitExceeded")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("a refused sign has no Retry-After")
	}
	if r := sign(ecKey, "ECDSA_SHA_256"); r.Status != 200 {
		t.Fatalf("ECC sign with every RSA slot taken: %d %s", r.Status, r.Body)
	}
	held[0]()
	if r := sign(rsaKey, "RSASSA_PSS_SHA_256"); r.Status != 200 {
		t.Fatalf("RSA sign with a free slot: %d %s", r.Status, r.Body)
	}
	for _, release := range held[1:] {
		release()
	}
	if pool.InUse() != 0 {
		t.Fatalf("%d slots still held after the signs returned", pool.InUse())
	}
}
