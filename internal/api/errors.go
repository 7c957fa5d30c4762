package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// errorBody is Infisical's error shape. Message is a string, or for a 422 an
// array of issues as zod reports them.
type errorBody struct {
	ReqID      string `json:"reqId"`
	StatusCode int    `json:"statusCode"`
	Message    any    `json:"message"`
	Error      string `json:"error"`
	Details    any    `json:"details,omitempty"`
}

// validationIssue is one entry of a 422 message, in zod's shape.
type validationIssue struct {
	Code    string   `json:"code"`
	Path    []string `json:"path"`
	Message string   `json:"message"`
}

var kindStatus = map[errs.Kind]struct {
	status int
	name   string
}{
	errs.Internal:           {http.StatusInternalServerError, "InternalServerError"},
	errs.Invalid:            {http.StatusBadRequest, "BadRequest"},
	errs.Validation:         {http.StatusUnprocessableEntity, "ValidationFailure"},
	errs.Unauthorized:       {http.StatusUnauthorized, "UnauthorizedError"},
	errs.Forbidden:          {http.StatusForbidden, "ForbiddenError"},
	errs.NotFound:           {http.StatusNotFound, "NotFound"},
	errs.Conflict:           {http.StatusConflict, "Conflict"},
	errs.TooLarge:           {http.StatusRequestEntityTooLarge, "PayloadTooLarge"},
	errs.RateLimited:        {http.StatusTooManyRequests, "RateLimitExceeded"},
	errs.Unavailable:        {http.StatusServiceUnavailable, "ServiceUnavailable"},
	errs.PreconditionFailed: {http.StatusPreconditionFailed, "PreconditionFailed"},
}

// maxMessageBytes bounds an error message as answered and logged.
const maxMessageBytes = 2 << 10

// writeError renders err in Infisical's shape. Internal errors are logged with
// the request id; the client sees a fixed message.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	reqID := requestID(r.Context())
	kind := errs.KindOf(err)
	ks, ok := kindStatus[kind]
	if !ok {
		ks = kindStatus[errs.Internal]
		kind = errs.Internal
	}
	body := errorBody{ReqID: reqID, StatusCode: ks.status, Error: ks.name}
	if kind == errs.Internal {
		s.log.ErrorContext(r.Context(), "internal error", "reqId", reqID, "route", r.Pattern, "err", err.Error())
		body.Message = "Something went wrong"
	} else {
		e, _ := errors.AsType[*errs.Error](err)
		// Some messages quote what the request named (a project id); the
		// request may be up to a megabyte, and its refusal is logged.
		msg := audit.Clip(e.Message, maxMessageBytes)
		// A client's message is safe to log (it never carries a secret), and
		// with the request id it lets a user match a client's failure to a cause.
		attrs := []any{"reqId", reqID, "route", r.Pattern, "status", ks.status, "error", first(e.Code, ks.name), "message", msg}
		if e.LogErr && e.Err != nil { // what the client is not told, for the operator
			attrs = append(attrs, "cause", e.Err.Error())
		}
		s.log.InfoContext(r.Context(), "request refused", attrs...)
		body.Message = msg
		if e.Code != "" {
			body.Error = e.Code
		}
		body.Details = e.Details
		if kind == errs.Validation {
			path, _ := e.Details.([]string)
			if path == nil {
				path = []string{}
			}
			body.Message = []validationIssue{{Code: "custom", Path: path, Message: msg}}
			body.Details = nil
		}
		if kind == errs.RateLimited {
			retry := 60
			if e.RetryAfter > 0 {
				retry = e.RetryAfter
			}
			w.Header().Set("Retry-After", strconv.Itoa(retry))
		}
	}
	writeJSON(w, ks.status, body)
}

// marshal encodes v as JSON followed by a newline, leaving <, > and &
// as they are: encoding/json's HTML escaping writes each as six bytes, which
// made a listing of values full of them six times their size (a member's
// way to make every read build hundreds of megabytes), and the answers are
// application/json, never HTML.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeJSON writes v as the JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := marshal(v)
	if err != nil {
		slog.Error("encode response", "err", err)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"statusCode":500,"message":"Something went wrong","error":"InternalServerError"}`))
		return nil
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
	return nil
}
