package api

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/kms"
)

// kmsRoutes serves KMS keys: Infisical's /api/v1/kms routes, plus lockbox's
// own rotate, rewrap and version retirement.
func (s *Server) kmsRoutes(m *routeMux) {
	const base = "/api/v1/kms/keys"
	m.Handle("POST "+base, s.authed(s.kmsCreate))
	m.Handle("GET "+base, s.authed(s.kmsList))
	m.Handle("GET "+base+"/{keyId}", s.authed(s.kmsGet))
	m.Handle("PATCH "+base+"/{keyId}", s.authed(s.kmsUpdate))
	m.Handle("DELETE "+base+"/{keyId}", s.authed(s.kmsDelete))
	// GET key-name/{keyName} and GET {keyId}/public-key overlap for
	// ServeMux; one route serves every GET of two segments.
	subs := map[string]func(http.ResponseWriter, *http.Request) error{}
	m.Handle("GET "+base+"/{keyId}/{sub}", s.authed(func(w http.ResponseWriter, r *http.Request) error {
		if r.PathValue("keyId") == "key-name" {
			r.SetPathValue("keyName", r.PathValue("sub"))
			return s.kmsGetByName(w, r)
		}
		if h, ok := subs[r.PathValue("sub")]; ok {
			return h(w, r)
		}
		return errs.NotFoundf("Route GET:%s not found", r.URL.Path)
	}))
	*m.patterns = append(*m.patterns, "GET "+base+"/key-name/{keyName}")
	m.HandleSub(subs, "GET "+base+"/{keyId}/public-key", s.kmsPublicKey)
	m.HandleSub(subs, "GET "+base+"/{keyId}/signing-algorithms", s.kmsSigningAlgorithms)
	m.Handle("POST "+base+"/{keyId}/encrypt", s.authed(s.kmsEncrypt))
	m.Handle("POST "+base+"/{keyId}/decrypt", s.authed(s.kmsDecrypt))
	m.Handle("POST "+base+"/{keyId}/sign", s.authed(s.kmsSign))
	m.Handle("POST "+base+"/{keyId}/verify", s.authed(s.kmsVerify))
	// lockbox only: key versions.
	m.Handle("POST "+base+"/{keyId}/rotate", s.authed(s.kmsRotate))
	m.Handle("POST "+base+"/{keyId}/rewrap", s.authed(s.kmsRewrap))
	m.Handle("DELETE "+base+"/{keyId}/versions/{version}", s.authed(s.kmsRetireVersion))
}

// kmsRetireVersion (lockbox only) destroys an older version's material.
func (s *Server) kmsRetireVersion(w http.ResponseWriter, r *http.Request) error {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		e := errs.Invalidf("version must be a positive whole number")
		e.Details = []string{"version"}
		return e
	}
	k, err := s.svc.KMS.RetireVersion(r.Context(), actorFrom(r.Context()), r.PathValue("keyId"), v)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Key            wireKMSKey `json:"key"`
		RetiredVersion int        `json:"retiredVersion"`
	}{toWireKMSKey(k), v})
}

type wireKMSKey struct {
	ID                  string `json:"id"`
	Description         string `json:"description"`
	IsDisabled          bool   `json:"isDisabled"`
	OrgID               string `json:"orgId"`
	Name                string `json:"name"`
	ProjectID           string `json:"projectId"`
	KeyUsage            string `json:"keyUsage"`
	Version             int    `json:"version"`
	EncryptionAlgorithm string `json:"encryptionAlgorithm"`
	CreatedAt           string `json:"createdAt"`
	UpdatedAt           string `json:"updatedAt"`
}

func toWireKMSKey(k kms.Key) wireKMSKey {
	return wireKMSKey{ID: k.ID, Description: k.Description, IsDisabled: k.Disabled, OrgID: k.OrgID, Name: k.Name, ProjectID: k.ProjectID,
		KeyUsage: string(k.Usage), Version: k.Version, EncryptionAlgorithm: string(k.Algorithm),
		CreatedAt: rfc3339(k.CreatedAt), UpdatedAt: rfc3339(k.UpdatedAt)}
}

func writeKMSKey(w http.ResponseWriter, k kms.Key) error {
	return writeJSON(w, http.StatusOK, struct {
		Key wireKMSKey `json:"key"`
	}{toWireKMSKey(k)})
}

// b64Field decodes a required base64 field of at most max bytes.
func b64Field(name string, v *string, max int) ([]byte, error) {
	if v == nil {
		return nil, field(name, "Required")
	}
	b, err := base64.StdEncoding.DecodeString(*v)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(*v)
	}
	if err != nil {
		return nil, field(name, "%s must be base64 encoded", name)
	}
	if len(b) > max {
		return nil, field(name, "%s cannot exceed %d bytes", name, max)
	}
	return b, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func (s *Server) kmsCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ProjectID           string `json:"projectId"`
		Name                string `json:"name"`
		Description         string `json:"description"`
		KeyUsage            string `json:"keyUsage"`
		EncryptionAlgorithm string `json:"encryptionAlgorithm"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	k, err := s.svc.KMS.Create(r.Context(), actorFrom(r.Context()), kms.NewKey{ProjectID: req.ProjectID, Name: req.Name,
		Description: req.Description, Usage: req.KeyUsage, Algorithm: req.EncryptionAlgorithm})
	if err != nil {
		return err
	}
	return writeKMSKey(w, k)
}

func (s *Server) kmsList(w http.ResponseWriter, r *http.Request) error {
	offset, err := queryInt(r, 0, 0, 1<<30, "offset")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, 100, 1, 100, "limit")
	if err != nil {
		return err
	}
	if ob := query(r, "orderBy"); ob != "" && ob != "name" {
		return field("orderBy", "orderBy must be name")
	}
	o := kms.ListOptions{Offset: offset, Limit: limit, Search: query(r, "search")}
	switch query(r, "orderDirection") {
	case "", "asc":
	case "desc":
		o.Descending = true
	default:
		return field("orderDirection", "orderDirection must be asc or desc")
	}
	keys, total, err := s.svc.KMS.List(r.Context(), actorFrom(r.Context()), query(r, "projectId"), o)
	if err != nil {
		return err
	}
	out := make([]wireKMSKey, len(keys))
	for i, k := range keys {
		out[i] = toWireKMSKey(k)
	}
	return writeJSON(w, http.StatusOK, struct {
		Keys       []wireKMSKey `json:"keys"`
		TotalCount int          `json:"totalCount"`
	}{out, total})
}

func (s *Server) kmsGet(w http.ResponseWriter, r *http.Request) error {
	k, err := s.svc.KMS.Get(r.Context(), actorFrom(r.Context()), r.PathValue("keyId"))
	if err != nil {
		return err
	}
	return writeKMSKey(w, k)
}

func (s *Server) kmsGetByName(w http.ResponseWriter, r *http.Request) error {
	k, err := s.svc.KMS.GetByName(r.Context(), actorFrom(r.Context()), query(r, "projectId"), r.PathValue("keyName"))
	if err != nil {
		return err
	}
	return writeKMSKey(w, k)
}

func (s *Server) kmsUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
		IsDisabled  *bool   `json:"isDisabled"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	k, err := s.svc.KMS.Update(r.Context(), actorFrom(r.Context()), r.PathValue("keyId"),
		kms.Update{Name: req.Name, Description: req.Description, Disabled: req.IsDisabled})
	if err != nil {
		return err
	}
	return writeKMSKey(w, k)
}

// kmsDelete ignores any body (the Go SDK sends {"KeyId": ...}).
func (s *Server) kmsDelete(w http.ResponseWriter, r *http.Request) error {
	k, err := s.svc.KMS.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("keyId"))
	if err != nil {
		return err
	}
	return writeKMSKey(w, k)
}

func (s *Server) kmsEncrypt(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Plaintext *string `json:"plaintext"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	pt, err := b64Field("plaintext", req.Plaintext, kms.MaxData)
	if err != nil {
		return err
	}
	defer clear(pt)
	ct, err := s.svc.KMS.Encrypt(r.Context(), actorFrom(r.Context()), r.PathValue("keyId"), pt)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Ciphertext string `json:"ciphertext"`
	}{b64(ct)})
}

func (s *Server) kmsDecrypt(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Ciphertext *string `json:"ciphertext"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	ct, err := b64Field("ciphertext", req.Ciphertext, kms.MaxData+kms.CiphertextOverhead)
	if err != nil {
		return err
	}
	pt, err := s.svc.KMS.Decrypt(r.Context(), actorFrom(r.Context()), r.PathValue("keyId"), ct)
	if err != nil {
		return err
	}
	defer clear(pt)
	return writeJSON(w, http.StatusOK, struct {
		Plaintext string `json:"plaintext"`
	}{b64(pt)})
}

// signingAlgorithm reads a signing algorithm Infisical knows; whether it
// fits the key is the key's to say (a 400).
func signingAlgorithm(v string) (kms.SigningAlgorithm, error) {
	all := append(kms.SigningAlgorithms(kms.RSA4096), kms.SigningAlgorithms(kms.ECCNISTP256)...)
	sa := kms.SigningAlgorithm(strings.TrimSpace(v))
	if slices.Contains(all, sa) {
		return sa, nil
	}
	names := make([]string, len(all))
	for i, a := range all {
		names[i] = string(a)
	}
	return "", field("signingAlgorithm", "signingAlgorithm must be one of %s", strings.Join(names, ", "))
}

type signBody struct {
	Data             *string `json:"data"`
	Signature        *string `json:"signature"`
	SigningAlgorithm string  `json:"signingAlgorithm"`
	IsDigest         bool    `json:"isDigest"`
}

func (s *Server) kmsSign(w http.ResponseWriter, r *http.Request) error {
	var req signBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	sa, err := signingAlgorithm(req.SigningAlgorithm)
	if err != nil {
		return err
	}
	data, err := b64Field("data", req.Data, kms.MaxData)
	if err != nil {
		return err
	}
	id := r.PathValue("keyId")
	sig, err := s.svc.KMS.Sign(r.Context(), actorFrom(r.Context()), id, sa, data, req.IsDigest)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Signature        string `json:"signature"`
		KeyID            string `json:"keyId"`
		SigningAlgorithm string `json:"signingAlgorithm"`
	}{b64(sig), id, string(sa)})
}

func (s *Server) kmsVerify(w http.ResponseWriter, r *http.Request) error {
	var req signBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	sa, err := signingAlgorithm(req.SigningAlgorithm)
	if err != nil {
		return err
	}
	data, err := b64Field("data", req.Data, kms.MaxData)
	if err != nil {
		return err
	}
	sig, err := b64Field("signature", req.Signature, kms.MaxData)
	if err != nil {
		return err
	}
	id := r.PathValue("keyId")
	ok, err := s.svc.KMS.Verify(r.Context(), actorFrom(r.Context()), id, sa, data, sig, req.IsDigest)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		SignatureValid   bool   `json:"signatureValid"`
		KeyID            string `json:"keyId"`
		SigningAlgorithm string `json:"signingAlgorithm"`
	}{ok, id, string(sa)})
}

// kmsPublicKey answers with the DER SubjectPublicKeyInfo in base64, as Infisical does.
func (s *Server) kmsPublicKey(w http.ResponseWriter, r *http.Request) error {
	pub, err := s.svc.KMS.PublicKey(r.Context(), actorFrom(r.Context()), r.PathValue("keyId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		PublicKey string `json:"publicKey"`
	}{b64(pub)})
}

func (s *Server) kmsSigningAlgorithms(w http.ResponseWriter, r *http.Request) error {
	algs, err := s.svc.KMS.SigningAlgorithms(r.Context(), actorFrom(r.Context()), r.PathValue("keyId"))
	if err != nil {
		return err
	}
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return writeJSON(w, http.StatusOK, struct {
		SigningAlgorithms []string `json:"signingAlgorithms"`
	}{out})
}

// kmsRotate (lockbox only) adds a version to an encryption key.
func (s *Server) kmsRotate(w http.ResponseWriter, r *http.Request) error {
	k, err := s.svc.KMS.Rotate(r.Context(), actorFrom(r.Context()), r.PathValue("keyId"))
	if err != nil {
		return err
	}
	return writeKMSKey(w, k)
}

// kmsRewrap (lockbox only) re-encrypts a ciphertext under the key's newest
// version without returning the plaintext.
func (s *Server) kmsRewrap(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Ciphertext *string `json:"ciphertext"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	ct, err := b64Field("ciphertext", req.Ciphertext, kms.MaxData+kms.CiphertextOverhead)
	if err != nil {
		return err
	}
	out, version, err := s.svc.KMS.Rewrap(r.Context(), actorFrom(r.Context()), r.PathValue("keyId"), ct)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Ciphertext string `json:"ciphertext"`
		Version    int    `json:"version"`
	}{b64(out), version})
}
