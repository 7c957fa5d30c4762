// Package errs defines the kinds of failure lockbox reports to clients.
// Only internal/api turns them into HTTP statuses.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies a failure for the client.
type Kind uint8

const (
	Internal           Kind = iota // logged in full; the client sees a fixed message
	Invalid                        // 400: the request is well-formed but not acceptable
	Validation                     // 422: the request does not match the schema
	Unauthorized                   // 401: no or bad credentials
	Forbidden                      // 403: authenticated, but not allowed
	NotFound                       // 404
	Conflict                       // 409
	TooLarge                       // 413
	RateLimited                    // 429
	Unavailable                    // 503
	PreconditionFailed             // 412: a conditional request's precondition (If-Match) does not hold
)

// Error is a failure whose Message is safe to show a client; Err is for logs only.
type Error struct {
	Kind    Kind
	Message string
	// Code overrides the name in the "error" field of the wire body
	// (for example "PermissionDenied" or "TokenError"); empty means the
	// kind's default.
	Code string
	// Details is optional structured data that is safe to show a client.
	Details any
	// RetryAfter, in seconds, is sent as Retry-After with a RateLimited
	// error; 0 means the API's default.
	RetryAfter int
	Err        error
	// LogErr has the API log Err with the refusal (a 4xx), for the
	// operator: set only where Err holds no secret and no part of a
	// request's values (see WithLoggedCause).
	LogErr bool
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf reports err's kind; anything that is not an *Error is Internal.
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return Internal
}

// Is reports whether err is an *Error of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

func newf(k Kind, format string, args []any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// BadRequest reports an unacceptable request (400).
func BadRequest(format string, args ...any) *Error { return newf(Invalid, format, args) }

// Invalidf reports a schema failure (422 ValidationFailure).
func Invalidf(format string, args ...any) *Error { return newf(Validation, format, args) }

// Fieldf reports an invalid request field (422) whose name goes in Details,
// where clients point at the field.
func Fieldf(name, format string, args ...any) *Error {
	e := newf(Validation, format, args)
	e.Details = []string{name}
	return e
}

// Unauthorizedf reports missing or bad credentials (401).
func Unauthorizedf(format string, args ...any) *Error { return newf(Unauthorized, format, args) }

// Forbiddenf reports an authenticated actor that may not do this (403).
func Forbiddenf(format string, args ...any) *Error { return newf(Forbidden, format, args) }

// NotFoundf reports a missing resource (404).
func NotFoundf(format string, args ...any) *Error { return newf(NotFound, format, args) }

// Conflictf reports a clash with existing state (409).
func Conflictf(format string, args ...any) *Error { return newf(Conflict, format, args) }

// PreconditionFailedf reports a conditional request whose precondition does not hold (412).
func PreconditionFailedf(format string, args ...any) *Error {
	return newf(PreconditionFailed, format, args)
}

// RateLimitedf reports too many requests (429).
func RateLimitedf(format string, args ...any) *Error { return newf(RateLimited, format, args) }

// PermissionDenied is the 403 of a failed permission check, worded as Infisical words it.
func PermissionDenied(action, subject string) *Error {
	return &Error{Kind: Forbidden, Code: "PermissionDenied",
		Message: fmt.Sprintf("You are not allowed to %s on %s", action, subject)}
}

// WithCode returns e with its wire error name set to code.
func (e *Error) WithCode(code string) *Error { e.Code = code; return e }

// WithLoggedCause keeps cause out of the client's message but has the API
// log it with the refusal: for a detail the client must not learn (what
// answered on a port) that the operator needs. cause must hold no secret.
func (e *Error) WithLoggedCause(cause error) *Error { e.Err, e.LogErr = cause, true; return e }

// Unavailablef reports a temporary failure (503).
func Unavailablef(format string, args ...any) *Error { return newf(Unavailable, format, args) }

// Wrap adds context to a non-nil *errp, keeping its kind: defer errs.Wrap(&err, "CreateProject").
func Wrap(errp *error, op string) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", op, *errp)
	}
}

// Internalf wraps err as an Internal failure; the message never reaches a client.
func Internalf(err error, format string, args ...any) error {
	return &Error{Kind: Internal, Message: fmt.Sprintf(format, args...), Err: err}
}
