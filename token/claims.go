package token

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OperatorClaims are the claims of an operator token.
type OperatorClaims struct {
	ClusterID string // iss
	Subject   string // sub
	// Caps are capability classes (SPEC section 4); never cluster.node.
	Caps []string
	// Rooms are room globs the token is limited to; empty means all rooms.
	Rooms     []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// ID is the jti, the token id used for revocation and in logs.
	// MintOperator fills a random 16-byte hex id when it is empty.
	ID string
}

// wireClaims is the JSON form. Pointers and nil slices let verification
// tell a missing claim from a zero one: every claim but rooms is required.
// nbf is not minted but honoured if present (RFC 7519 §4.1.5).
type wireClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Caps      []string         `json:"caps"`
	Rooms     []string         `json:"rooms,omitempty"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`
	ID        string           `json:"jti"`
}

// The jwt.Claims interface. The parser runs with claims validation off (we
// validate ourselves, to control order and reasons), so these only expose
// the values.

func (c *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *wireClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *wireClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *wireClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }
