package token

import (
	"fmt"
	"strings"
)

// MaxTokenBytes bounds a raw token before any decoding, so a hostile
// header costs at most this much work. Real operator tokens are a few
// hundred bytes; 8 KiB leaves room for long room-glob lists.
const MaxTokenBytes = 8 << 10

// ParseBearer extracts the JWT from an "authorization" header value of the
// form "Bearer <jwt>" (scheme case-insensitive, RFC 7235). An empty value or
// another scheme is ReasonMissing (there is no bearer token); a Bearer value
// whose token is empty, too long, or not made of base64url segments is
// ReasonMalformed.
func ParseBearer(authorization string) (string, error) {
	v := strings.TrimSpace(authorization)
	if v == "" {
		return "", fail(ReasonMissing, nil)
	}
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "bearer") {
		return "", fail(ReasonMissing, fmt.Errorf("authorization scheme is not Bearer"))
	}
	raw := strings.TrimLeft(rest, " ")
	if raw == "" {
		return "", malformed("empty bearer token")
	}
	if err := checkShape(raw); err != nil {
		return "", err
	}
	return raw, nil
}

// checkShape enforces the size limit and the compact-JWS alphabet: three
// non-empty base64url segments separated by dots, nothing else.
func checkShape(raw string) *Error {
	if len(raw) > MaxTokenBytes {
		return malformed(fmt.Sprintf("token longer than %d bytes", MaxTokenBytes))
	}
	dots := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			dots++
		default:
			return malformed("token has a character outside base64url")
		}
	}
	if dots != 2 {
		return malformed("token is not three dot-separated segments")
	}
	if strings.HasPrefix(raw, ".") || strings.HasSuffix(raw, ".") || strings.Contains(raw, "..") {
		return malformed("token has an empty segment")
	}
	return nil
}
