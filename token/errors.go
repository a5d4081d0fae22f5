package token

import "errors"

// Reasons are stable strings: they are sent verbatim in gRPC
// UNAUTHENTICATED messages ("auth: " + Reason) and used as the reason label
// of nodalmerge_auth_failures_total, so they must never change casually and
// never contain token contents.
const (
	ReasonMissing      = "missing bearer token"
	ReasonMalformed    = "malformed token"
	ReasonUnknownKey   = "unknown key id"
	ReasonBadSignature = "signature verification failed"
	ReasonExpired      = "token has expired"
	ReasonWrongCluster = "token issued for another cluster"
)

// Error is a token failure. Reason is one of the Reason constants; Err, when
// set, says more for logs. Err is always built by this package from fixed
// phrases, claim names, key ids and the parser's own messages, never from
// the token's signature or the raw token.
type Error struct {
	Reason string
	Err    error
}

// Error returns the reason, followed by the detail when there is one.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

// Unwrap exposes the detail, so errors.Is(err, keyring.ErrUnknownKey) works.
func (e *Error) Unwrap() error { return e.Err }

func fail(reason string, err error) *Error { return &Error{Reason: reason, Err: err} }

func malformed(detail string) *Error { return fail(ReasonMalformed, errors.New(detail)) }
