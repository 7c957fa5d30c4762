package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// KMSKey is a KMS key as the API describes it; its material never leaves the server.
type KMSKey struct {
	ID                  string `json:"id"`
	Name                string `json:"name"`
	Description         string `json:"description"`
	IsDisabled          bool   `json:"isDisabled"`
	OrgID               string `json:"orgId"`
	ProjectID           string `json:"projectId"`
	KeyUsage            string `json:"keyUsage"`
	EncryptionAlgorithm string `json:"encryptionAlgorithm"`
	Version             int    `json:"version"`
	CreatedAt           string `json:"createdAt"`
	UpdatedAt           string `json:"updatedAt"`
}

// KMSNewKey describes a key to create. Empty KeyUsage and EncryptionAlgorithm
// leave the choice to the server (an aes-256-gcm encryption key).
type KMSNewKey struct {
	ProjectID           string `json:"projectId"`
	Name                string `json:"name"`
	Description         string `json:"description,omitempty"`
	KeyUsage            string `json:"keyUsage,omitempty"`
	EncryptionAlgorithm string `json:"encryptionAlgorithm,omitempty"`
}

// KMSListOptions narrows a key listing; zero values are the server's defaults.
type KMSListOptions struct {
	Search string
	Offset int
	Limit  int
}

const kmsKeys = "/api/v1/kms/keys"

func kmsKeyPath(id, suffix string) string { return kmsKeys + "/" + url.PathEscape(id) + suffix }

func (c *Client) kmsKey(ctx context.Context, method, path string, body any) (KMSKey, error) {
	var out struct {
		Key KMSKey `json:"key"`
	}
	err := c.Do(ctx, method, path, body, &out)
	return out.Key, err
}

// KMSCreateKey creates a key in a project.
func (c *Client) KMSCreateKey(ctx context.Context, k KMSNewKey) (KMSKey, error) {
	return c.kmsKey(ctx, http.MethodPost, kmsKeys, k)
}

// KMSKeys lists a project's keys; total counts every key matching o.Search.
func (c *Client) KMSKeys(ctx context.Context, projectID string, o KMSListOptions) (keys []KMSKey, total int, err error) {
	q := url.Values{"projectId": {projectID}}
	if o.Search != "" {
		q.Set("search", o.Search)
	}
	if o.Offset != 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var out struct {
		Keys       []KMSKey `json:"keys"`
		TotalCount int      `json:"totalCount"`
	}
	err = c.Do(ctx, http.MethodGet, kmsKeys+"?"+q.Encode(), nil, &out)
	return out.Keys, out.TotalCount, err
}

// KMSKey returns the key with id.
func (c *Client) KMSKey(ctx context.Context, id string) (KMSKey, error) {
	return c.kmsKey(ctx, http.MethodGet, kmsKeyPath(id, ""), nil)
}

// KMSKeyByName returns the project's key called name.
func (c *Client) KMSKeyByName(ctx context.Context, projectID, name string) (KMSKey, error) {
	return c.kmsKey(ctx, http.MethodGet, kmsKeys+"/key-name/"+url.PathEscape(name)+"?"+url.Values{"projectId": {projectID}}.Encode(), nil)
}

// KMSDeleteKey deletes a key and its material: nothing it encrypted can be
// decrypted afterwards.
func (c *Client) KMSDeleteKey(ctx context.Context, id string) (KMSKey, error) {
	return c.kmsKey(ctx, http.MethodDelete, kmsKeyPath(id, ""), nil)
}

// KMSRotateKey adds a version to an encryption key (a lockbox route); older
// ciphertexts still decrypt.
func (c *Client) KMSRotateKey(ctx context.Context, id string) (KMSKey, error) {
	return c.kmsKey(ctx, http.MethodPost, kmsKeyPath(id, "/rotate"), nil)
}

// KMSRetireVersion destroys an older version of a key (a lockbox route):
// its ciphertexts can never be decrypted again.
func (c *Client) KMSRetireVersion(ctx context.Context, id string, version int) (KMSKey, error) {
	return c.kmsKey(ctx, http.MethodDelete, kmsKeyPath(id, "/versions/"+strconv.Itoa(version)), nil)
}

// KMSRewrap re-encrypts a ciphertext of any version under the key's newest
// (a lockbox route); the plaintext stays on the server.
func (c *Client) KMSRewrap(ctx context.Context, id string, ciphertext []byte) ([]byte, int, error) {
	var out struct {
		Ciphertext string `json:"ciphertext"`
		Version    int    `json:"version"`
	}
	if err := c.Do(ctx, http.MethodPost, kmsKeyPath(id, "/rewrap"), map[string]string{"ciphertext": b64(ciphertext)}, &out); err != nil {
		return nil, 0, err
	}
	ct, err := b64Answer("ciphertext", out.Ciphertext)
	return ct, out.Version, err
}

// b64Answer decodes a base64 field of a response.
func b64Answer(name, v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("the server's %s is not base64: %v", name, err)
	}
	return b, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// KMSEncrypt encrypts plaintext with the key's newest version.
func (c *Client) KMSEncrypt(ctx context.Context, id string, plaintext []byte) ([]byte, error) {
	var out struct {
		Ciphertext string `json:"ciphertext"`
	}
	if err := c.Do(ctx, http.MethodPost, kmsKeyPath(id, "/encrypt"), map[string]string{"plaintext": b64(plaintext)}, &out); err != nil {
		return nil, err
	}
	return b64Answer("ciphertext", out.Ciphertext)
}

// KMSDecrypt decrypts a ciphertext made by any version of the key.
func (c *Client) KMSDecrypt(ctx context.Context, id string, ciphertext []byte) ([]byte, error) {
	var out struct {
		Plaintext string `json:"plaintext"`
	}
	if err := c.Do(ctx, http.MethodPost, kmsKeyPath(id, "/decrypt"), map[string]string{"ciphertext": b64(ciphertext)}, &out); err != nil {
		return nil, err
	}
	return b64Answer("plaintext", out.Plaintext)
}

// KMSSign signs data with a sign-verify key; with isDigest, data is already
// a digest made with the algorithm's hash.
func (c *Client) KMSSign(ctx context.Context, id, algorithm string, data []byte, isDigest bool) ([]byte, error) {
	var out struct {
		Signature string `json:"signature"`
	}
	body := map[string]any{"data": b64(data), "signingAlgorithm": algorithm, "isDigest": isDigest}
	if err := c.Do(ctx, http.MethodPost, kmsKeyPath(id, "/sign"), body, &out); err != nil {
		return nil, err
	}
	return b64Answer("signature", out.Signature)
}

// KMSVerify reports whether signature is the key's signature of data. A
// signature that does not verify is false, not an error.
func (c *Client) KMSVerify(ctx context.Context, id, algorithm string, data, signature []byte, isDigest bool) (bool, error) {
	var out struct {
		SignatureValid bool `json:"signatureValid"`
	}
	body := map[string]any{"data": b64(data), "signature": b64(signature), "signingAlgorithm": algorithm, "isDigest": isDigest}
	err := c.Do(ctx, http.MethodPost, kmsKeyPath(id, "/verify"), body, &out)
	return out.SignatureValid, err
}

// KMSPublicKey returns a sign-verify key's public key as DER SubjectPublicKeyInfo.
func (c *Client) KMSPublicKey(ctx context.Context, id string) ([]byte, error) {
	var out struct {
		PublicKey string `json:"publicKey"`
	}
	if err := c.Do(ctx, http.MethodGet, kmsKeyPath(id, "/public-key"), nil, &out); err != nil {
		return nil, err
	}
	return b64Answer("publicKey", out.PublicKey)
}

// KMSSigningAlgorithms lists the signing algorithms a key can use.
func (c *Client) KMSSigningAlgorithms(ctx context.Context, id string) ([]string, error) {
	var out struct {
		SigningAlgorithms []string `json:"signingAlgorithms"`
	}
	err := c.Do(ctx, http.MethodGet, kmsKeyPath(id, "/signing-algorithms"), nil, &out)
	return out.SigningAlgorithms, err
}
