package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/secret"
)

// secretRoutes serves secrets: the v3 "raw" API the SDKs use and v4 the CLI uses.
func (s *Server) secretRoutes(m *routeMux) {
	m.Handle("GET /api/v3/secrets/raw", s.authed(s.secretList))
	m.Handle("GET /api/v3/secrets/raw/{secretName}", s.authed(s.secretGet))
	m.Handle("POST /api/v3/secrets/raw/{secretName}", s.authed(s.secretCreate))
	m.Handle("PATCH /api/v3/secrets/raw/{secretName}", s.authed(s.secretUpdate))
	m.Handle("DELETE /api/v3/secrets/raw/{secretName}", s.authed(s.secretDelete))
	m.Handle("POST /api/v3/secrets/batch/raw", s.authed(s.secretBatchCreate))
	m.Handle("GET /api/v4/secrets", s.authed(s.secretList))
	m.Handle("GET /api/v4/secrets/{secretName}", s.authed(s.secretGet))
	m.Handle("POST /api/v4/secrets/{secretName}", s.authed(s.secretCreate))
	m.Handle("PATCH /api/v4/secrets/{secretName}", s.authed(s.secretUpdate))
	m.Handle("DELETE /api/v4/secrets/{secretName}", s.authed(s.secretDelete))
	m.Handle("POST /api/v4/secrets/batch", s.authed(s.secretBatchCreate))
}

type wireSecret struct {
	ID                    string     `json:"id"`
	LegacyID              string     `json:"_id"`
	Workspace             string     `json:"workspace"`
	Environment           string     `json:"environment"`
	SecretPath            string     `json:"secretPath"`
	Version               int        `json:"version"`
	Type                  string     `json:"type"`
	SecretKey             string     `json:"secretKey"`
	SecretValue           string     `json:"secretValue"`
	SecretValueHidden     bool       `json:"secretValueHidden"`
	SecretComment         string     `json:"secretComment"`
	SkipMultilineEncoding bool       `json:"skipMultilineEncoding"`
	Tags                  []wireTag  `json:"tags"`
	SecretMetadata        []wireMeta `json:"secretMetadata"`
	// SecretReminderRepeatDays and SecretReminderNote are null without a reminder.
	SecretReminderRepeatDays *int     `json:"secretReminderRepeatDays"`
	SecretReminderNote       *string  `json:"secretReminderNote"`
	SecretReminderRecipients []string `json:"secretReminderRecipients"`
	CreatedAt                string   `json:"createdAt"`
	UpdatedAt                string   `json:"updatedAt"`
}

// wireMeta is one metadata entry. Lockbox seals all metadata at rest, so
// isEncrypted (Infisical's per-entry flag) is accepted and always answered false.
type wireMeta struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	IsEncrypted bool   `json:"isEncrypted"`
}

func toWireSecret(sec secret.Secret) wireSecret {
	md := make([]wireMeta, len(sec.Metadata))
	for i, m := range sec.Metadata {
		md[i] = wireMeta{Key: m.Key, Value: m.Value}
	}
	out := wireSecret{ID: sec.ID, LegacyID: sec.ID, Workspace: sec.ProjectID, Environment: sec.Env, SecretPath: sec.Path,
		Version: sec.Version, Type: sec.Type, SecretKey: sec.Key, SecretValue: sec.Value, SecretValueHidden: sec.ValueHidden,
		SecretComment: sec.Comment, SkipMultilineEncoding: sec.SkipMultiline, Tags: toWireTags(sec.Tags), SecretMetadata: md,
		SecretReminderRecipients: sec.Reminder.Recipients, CreatedAt: rfc3339(sec.CreatedAt), UpdatedAt: rfc3339(sec.UpdatedAt)}
	if out.SecretReminderRecipients == nil {
		out.SecretReminderRecipients = []string{}
	}
	if sec.Reminder.RepeatDays > 0 {
		d := sec.Reminder.RepeatDays
		out.SecretReminderRepeatDays = &d
	}
	if sec.Reminder.Note != "" {
		n := sec.Reminder.Note
		out.SecretReminderNote = &n
	}
	return out
}

// extrasBody is the metadata and reminder part of a write body; absent
// fields (and null ones) leave the secret's unchanged on an update.
type extrasBody struct {
	SecretMetadata           *[]wireMeta `json:"secretMetadata"`
	SecretReminderRepeatDays *int        `json:"secretReminderRepeatDays"`
	SecretReminderNote       *string     `json:"secretReminderNote"`
	SecretReminderRecipients *[]string   `json:"secretReminderRecipients"`
}

func (b extrasBody) extras() secret.Extras {
	x := secret.Extras{ReminderRepeatDays: b.SecretReminderRepeatDays, ReminderNote: b.SecretReminderNote,
		ReminderRecipients: b.SecretReminderRecipients}
	if b.SecretMetadata != nil {
		md := make([]secret.MetaEntry, len(*b.SecretMetadata))
		for i, m := range *b.SecretMetadata {
			md[i] = secret.MetaEntry{Key: m.Key, Value: m.Value}
		}
		x.Metadata = &md
	}
	return x
}

// secretETag is the entity tag of one secret: its version, quoted. It is
// what If-Match names to make an update conditional.
func secretETag(sec secret.Secret) string { return `"` + strconv.Itoa(sec.Version) + `"` }

// writeSecret answers one secret with its ETag.
func writeSecret(w http.ResponseWriter, sec secret.Secret) error {
	w.Header().Set("ETag", secretETag(sec))
	return writeJSON(w, http.StatusOK, struct {
		Secret wireSecret `json:"secret"`
	}{toWireSecret(sec)})
}

// scopeQuery reads the project, environment and path with every spelling clients use.
func scopeQuery(r *http.Request) secret.Scope {
	return secret.Scope{ProjectID: query(r, "workspaceId", "projectId"), ProjectSlug: query(r, "workspaceSlug", "projectSlug"),
		Env: query(r, "environment"), Path: first(query(r, "secretPath", "path"), "/")}
}

func readOptions(r *http.Request) (secret.ReadOptions, error) {
	var o secret.ReadOptions
	var err error
	if o.Expand, err = queryBool(r, false, "expandSecretReferences"); err != nil {
		return o, err
	}
	view, err := queryBool(r, true, "viewSecretValue")
	if err != nil {
		return o, err
	}
	o.HideValue = !view
	if o.Recursive, err = queryBool(r, false, "recursive"); err != nil {
		return o, err
	}
	if o.IncludeImports, err = queryBool(r, false, "include_imports", "includeImports"); err != nil {
		return o, err
	}
	if ts := query(r, "tagSlugs"); ts != "" {
		for _, t := range strings.Split(ts, ",") {
			if t = strings.TrimSpace(t); t != "" {
				o.TagSlugs = append(o.TagSlugs, t)
			}
		}
	}
	if query(r, "includePersonalOverrides") != "" {
		if o.PersonalOverrides, err = queryBool(r, false, "includePersonalOverrides"); err != nil {
			return o, err
		}
		o.SharedOnly = !o.PersonalOverrides
	}
	return o, nil
}

func (s *Server) secretList(w http.ResponseWriter, r *http.Request) error {
	o, err := readOptions(r)
	if err != nil {
		return err
	}
	res, err := s.svc.Secrets.List(r.Context(), actorFrom(r.Context()), scopeQuery(r), o)
	if err != nil {
		return err
	}
	// The same result answers every request of this actor until something
	// changes: encode it, and hash the encoding, once.
	enc, err := res.Memo.Do("v3-list imports="+strconv.FormatBool(o.IncludeImports), func() (any, error) {
		return encodeWithETag(secretListBody(res, o.IncludeImports))
	})
	if err != nil {
		return err
	}
	return writeEncoded(w, r, enc.(encoded))
}

func secretListBody(res secret.Result, withImports bool) any {
	type wireImport struct {
		SecretPath  string       `json:"secretPath"`
		Environment string       `json:"environment"`
		FolderID    string       `json:"folderId"`
		Secrets     []wireSecret `json:"secrets"`
	}
	body := struct {
		Secrets []wireSecret `json:"secrets"`
		Imports []wireImport `json:"imports,omitempty"`
	}{Secrets: toWireSecrets(res.Secrets)}
	if withImports {
		body.Imports = make([]wireImport, len(res.Imports))
		for i, im := range res.Imports {
			body.Imports[i] = wireImport{im.Path, im.Env, im.FolderID, toWireSecrets(im.Secrets)}
		}
	}
	return body
}

func toWireSecrets(secs []secret.Secret) []wireSecret {
	out := make([]wireSecret, len(secs))
	for i, sec := range secs {
		out[i] = toWireSecret(sec)
	}
	return out
}

// encoded is a JSON body, newline-terminated, with its entity tag.
type encoded struct {
	body []byte
	etag string
}

func encodeWithETag(v any) (encoded, error) {
	b, err := marshal(v)
	if err != nil {
		return encoded{}, err
	}
	sum := sha256.Sum256(b[:len(b)-1])
	return encoded{b, `W/"` + hex.EncodeToString(sum[:16]) + `"`}, nil
}

// writeEncoded answers enc, or 304 when the client's If-None-Match names it.
func writeEncoded(w http.ResponseWriter, r *http.Request, enc encoded) error {
	h := w.Header()
	h["Etag"] = []string{enc.etag}
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == enc.etag || strings.Trim(inm, `W/"`) == strings.Trim(enc.etag, `W/"`)) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(enc.body)
	return err
}

func (s *Server) secretGet(w http.ResponseWriter, r *http.Request) error {
	o, err := readOptions(r)
	if err != nil {
		return err
	}
	v, err := queryInt(r, 0, 1, 1<<30, "version")
	if err != nil {
		return err
	}
	sec, err := s.svc.Secrets.Get(r.Context(), actorFrom(r.Context()), scopeQuery(r), r.PathValue("secretName"),
		secret.GetOptions{ReadOptions: o, Type: query(r, "type"), Version: v})
	if err != nil {
		return err
	}
	return writeSecret(w, sec)
}

// secretBody is the write body of v3 raw and v4 routes.
type secretBody struct {
	WorkspaceID           string    `json:"workspaceId"`
	ProjectID             string    `json:"projectId"`
	Environment           string    `json:"environment"`
	SecretPath            string    `json:"secretPath"`
	Type                  string    `json:"type"`
	SecretValue           *string   `json:"secretValue"`
	SecretComment         *string   `json:"secretComment"`
	SkipMultilineEncoding *bool     `json:"skipMultilineEncoding"`
	NewSecretName         *string   `json:"newSecretName"`
	TagIDs                *[]string `json:"tagIds"`
	ProjectSlug           string    `json:"projectSlug"`
	extrasBody
}

func (b secretBody) scope() secret.Scope {
	return secret.Scope{ProjectID: first(b.WorkspaceID, b.ProjectID), ProjectSlug: b.ProjectSlug, Env: b.Environment, Path: first(b.SecretPath, "/")}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (s *Server) secretCreate(w http.ResponseWriter, r *http.Request) error {
	var req secretBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.SecretValue == nil {
		return field("secretValue", "Required")
	}
	secs, err := s.svc.Secrets.Create(r.Context(), actorFrom(r.Context()), req.scope(), []secret.New{{Key: r.PathValue("secretName"),
		Value: *req.SecretValue, Comment: deref(req.SecretComment), Type: req.Type, SkipMultiline: deref(req.SkipMultilineEncoding),
		TagIDs: deref(req.TagIDs), Extras: req.extras()}})
	if err != nil {
		return err
	}
	return writeSecret(w, secs[0])
}

func (s *Server) secretUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		secretBody
		// Version (lockbox's) makes the update conditional on the current version.
		Version int `json:"version"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.Version < 0 {
		return field("version", "version must be a positive integer")
	}
	sec, err := s.svc.Secrets.Update(r.Context(), actorFrom(r.Context()), req.scope(), r.PathValue("secretName"), secret.Change{
		Type: req.Type, NewKey: req.NewSecretName, Value: req.SecretValue, Comment: req.SecretComment, SkipMultiline: req.SkipMultilineEncoding,
		TagIDs: req.TagIDs, Extras: req.extras(), IfMatch: ifMatchVersions(r), Version: req.Version})
	if err != nil {
		return err
	}
	return writeSecret(w, sec)
}

// ifMatchVersions reads If-Match as the versions it names: nil when it is
// absent or "*" (any current version will do), else the versions of the
// listed entity tags. A weak tag compares by its value, as compressing
// proxies weaken tags in passing; a tag lockbox did not make names nothing.
func ifMatchVersions(r *http.Request) []int {
	hs := r.Header.Values("If-Match")
	if len(hs) == 0 {
		return nil
	}
	out := []int{}
	for _, h := range hs {
		for tag := range strings.SplitSeq(h, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" {
				return nil
			}
			tag = strings.TrimPrefix(tag, "W/")
			if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
				continue
			}
			if v, err := strconv.Atoi(tag[1 : len(tag)-1]); err == nil && v > 0 {
				out = append(out, v)
			}
		}
	}
	return out
}

func (s *Server) secretDelete(w http.ResponseWriter, r *http.Request) error {
	var req secretBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	sec, err := s.svc.Secrets.Delete(r.Context(), actorFrom(r.Context()), req.scope(), r.PathValue("secretName"), req.Type)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Secret wireSecret `json:"secret"`
	}{toWireSecret(sec)})
}

func (s *Server) secretBatchCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		secretBody
		Secrets []struct {
			SecretKey             string   `json:"secretKey"`
			SecretValue           string   `json:"secretValue"`
			SecretComment         string   `json:"secretComment"`
			SkipMultilineEncoding bool     `json:"skipMultilineEncoding"`
			TagIDs                []string `json:"tagIds"`
			extrasBody
		} `json:"secrets"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	items := make([]secret.New, len(req.Secrets))
	for i, it := range req.Secrets {
		items[i] = secret.New{Key: it.SecretKey, Value: it.SecretValue, Comment: it.SecretComment, SkipMultiline: it.SkipMultilineEncoding,
			TagIDs: it.TagIDs, Extras: it.extras()}
	}
	secs, err := s.svc.Secrets.Create(r.Context(), actorFrom(r.Context()), req.scope(), items)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Secrets []wireSecret `json:"secrets"`
	}{toWireSecrets(secs)})
}

// secretHistoryRoutes serves secrets by id, batch updates and deletes, and versions.
func (s *Server) secretHistoryRoutes(m *routeMux) {
	m.Handle("GET /api/v3/secrets/raw/id/{secretId}", s.authed(s.secretGetByID))
	m.Handle("GET /api/v4/secrets/id/{secretId}", s.authed(s.secretGetByID))
	m.Handle("PATCH /api/v3/secrets/batch/raw", s.authed(s.secretBatchUpdate))
	m.Handle("PATCH /api/v4/secrets/batch", s.authed(s.secretBatchUpdate))
	m.Handle("DELETE /api/v3/secrets/batch/raw", s.authed(s.secretBatchDelete))
	m.Handle("DELETE /api/v4/secrets/batch", s.authed(s.secretBatchDelete))
	m.Handle("GET /api/v1/secret/{secretId}/secret-versions", s.authed(s.secretVersions))
	m.Handle("POST /api/v1/secret/{secretId}/secret-versions/{version}/rollback", s.authed(s.secretRollback))
}

func (s *Server) secretGetByID(w http.ResponseWriter, r *http.Request) error {
	sec, err := s.svc.Secrets.GetByID(r.Context(), actorFrom(r.Context()), r.PathValue("secretId"))
	if err != nil {
		return err
	}
	return writeSecret(w, sec)
}

type batchItemBody struct {
	SecretKey             string    `json:"secretKey"`
	SecretPath            string    `json:"secretPath"`
	Type                  string    `json:"type"`
	SecretValue           *string   `json:"secretValue"`
	SecretComment         *string   `json:"secretComment"`
	SkipMultilineEncoding *bool     `json:"skipMultilineEncoding"`
	NewSecretName         *string   `json:"newSecretName"`
	TagIDs                *[]string `json:"tagIds"`
	extrasBody
}

type batchBody struct {
	secretBody
	Mode    string          `json:"mode"`
	Secrets []batchItemBody `json:"secrets"`
}

func (b batchBody) items() []secret.BatchItem {
	out := make([]secret.BatchItem, len(b.Secrets))
	for i, it := range b.Secrets {
		out[i] = secret.BatchItem{Key: it.SecretKey, Path: it.SecretPath, Change: secret.Change{Type: it.Type, NewKey: it.NewSecretName,
			Value: it.SecretValue, Comment: it.SecretComment, SkipMultiline: it.SkipMultilineEncoding, TagIDs: it.TagIDs,
			Extras: it.extras()}}
	}
	return out
}

func writeSecrets(w http.ResponseWriter, secs []secret.Secret) error {
	return writeJSON(w, http.StatusOK, struct {
		Secrets []wireSecret `json:"secrets"`
	}{toWireSecrets(secs)})
}

func (s *Server) secretBatchUpdate(w http.ResponseWriter, r *http.Request) error {
	var req batchBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if r.Header.Get("If-Match") != "" {
		// Batch items are blind writes; refusing beats ignoring a precondition.
		return errs.BadRequest("If-Match applies to the update of one secret; batch updates are unconditional")
	}
	secs, err := s.svc.Secrets.UpdateMany(r.Context(), actorFrom(r.Context()), req.scope(), req.Mode, req.items())
	if err != nil {
		return err
	}
	return writeSecrets(w, secs)
}

func (s *Server) secretBatchDelete(w http.ResponseWriter, r *http.Request) error {
	var req batchBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	secs, err := s.svc.Secrets.DeleteMany(r.Context(), actorFrom(r.Context()), req.scope(), req.items())
	if err != nil {
		return err
	}
	return writeSecrets(w, secs)
}

func (s *Server) secretVersions(w http.ResponseWriter, r *http.Request) error {
	offset, err := queryInt(r, 0, 0, 1<<30, "offset")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, 20, 1, 100, "limit")
	if err != nil {
		return err
	}
	secs, err := s.svc.Secrets.Versions(r.Context(), actorFrom(r.Context()), r.PathValue("secretId"), offset, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		SecretVersions []wireSecret `json:"secretVersions"`
	}{toWireSecrets(secs)})
}

func (s *Server) secretRollback(w http.ResponseWriter, r *http.Request) error {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		return field("version", "version must be a positive integer")
	}
	sec, err := s.svc.Secrets.Rollback(r.Context(), actorFrom(r.Context()), r.PathValue("secretId"), v)
	if err != nil {
		return err
	}
	return writeSecret(w, sec)
}
