package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// decode reads a JSON body into v. Unknown fields are ignored (real clients
// send extras); an empty body decodes as {}. Bodies over the limit are 413,
// malformed JSON is 400 and a field of the wrong type is 422.
func (s *Server) decode(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &errs.Error{Kind: errs.TooLarge, Message: "Request body is larger than " + strconv.FormatInt(s.maxBody, 10) + " bytes"}
		}
		return errs.BadRequest("could not read request body")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if !utf8.Valid(body) {
		return errs.BadRequest("Body is not valid UTF-8")
	}
	return decodeJSON(body, v)
}

// decodeJSON is decode's unmarshalling, for a body already read.
func decodeJSON(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			e := errs.Invalidf("Expected %s, received %s", te.Type.String(), te.Value)
			if te.Field != "" {
				e.Details = strings.Split(te.Field, ".")
			}
			return e
		}
		return errs.BadRequest("Body is not valid JSON")
	}
	return nil
}

// field makes a 422 about one request field.
func field(name, format string, args ...any) error { return errs.Fieldf(name, format, args...) }

// query returns the first non-empty value among the given spellings of a query parameter.
func query(r *http.Request, names ...string) string {
	q := r.URL.Query()
	for _, n := range names {
		if v := strings.TrimSpace(q.Get(n)); v != "" {
			return v
		}
	}
	return ""
}

// queryBool parses "true"/"false"; empty is def.
func queryBool(r *http.Request, def bool, names ...string) (bool, error) {
	v := query(r, names...)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, field(names[0], "Expected boolean, received %q", v)
	}
	return b, nil
}

// queryInt parses an integer in [lo, hi]; empty is def.
func queryInt(r *http.Request, def, lo, hi int, names ...string) (int, error) {
	v := query(r, names...)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, field(names[0], "Expected an integer from %d to %d", lo, hi)
	}
	return n, nil
}

// first returns the first non-empty string.
func first(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
