package controlplane

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"slices"
	"time"

	"github.com/nodalmerge/nodalmerge-go/internal/lru"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// defaultTokenCacheSize bounds the verified-token cache. An operator
// deployment has a handful of live tokens; 4096 leaves room for many
// services without letting a caller with many valid tokens grow memory
// (each entry is a few hundred bytes).
const defaultTokenCacheSize = 4096

// tokenCache remembers operator tokens whose signature and claims were
// verified, so a repeated call skips the JWT parse and the Ed25519 check
// (most of the auth layer's cost). It is keyed by SHA-256 of the raw
// token, so it never holds the token itself, and two different tokens
// never share an entry.
//
// Only what cannot change for a given token is cached: its claims (signed)
// and the key that verified it. Everything that can change is checked on
// every call by the caller (verifyBearer): the expiry against now, that the
// kid still verifies in the current keyring with the same public key (a
// retired or superseded-past-grace key stops its tokens at once), the
// cluster id, and revocation of the token id. Failures are never stored:
// a token is only added after a full verification succeeded.
//
// It is an LRU bounded by size; a miss costs a full verification, never a
// wrong answer.
type tokenCache struct {
	lru *lru.Cache[[sha256.Size]byte, *cachedToken]
}

// cachedToken is one verified token. Its fields are never modified after
// insertion; claims handed out are copies.
type cachedToken struct {
	claims token.OperatorClaims
	kid    string
	pub    ed25519.PublicKey
	// verifiedAt guards against the clock going back: a token verified
	// "in the future" is verified again rather than trusted (its iat/nbf
	// may not hold at the earlier time).
	verifiedAt time.Time
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{lru: lru.New[[sha256.Size]byte, *cachedToken](size, 0, nil)}
}

func tokenCacheKey(raw string) [sha256.Size]byte { return sha256.Sum256([]byte(raw)) }

// get answers the cached entry of raw, or nil. The entry is immutable; the
// caller still has to check it against the current state (see valid).
func (tc *tokenCache) get(key [sha256.Size]byte) *cachedToken {
	e, _ := tc.lru.Get(key)
	return e
}

// put stores a verified token, evicting the least recently used entry when
// the cache is full.
func (tc *tokenCache) put(key [sha256.Size]byte, claims *token.OperatorClaims, kid string, pub ed25519.PublicKey, now time.Time) {
	tc.lru.Put(key, &cachedToken{claims: copyClaims(claims), kid: kid, pub: bytes.Clone(pub), verifiedAt: now})
}

// drop forgets key (an expired or no longer valid token), so it does not
// occupy a slot until evicted.
func (tc *tokenCache) drop(key [sha256.Size]byte) { tc.lru.Remove(key) }

// len answers the number of cached tokens.
func (tc *tokenCache) len() int {
	n, _ := tc.lru.Len()
	return n
}

// copyClaims copies c so that neither the cache nor a handler can change
// what the other sees.
func copyClaims(c *token.OperatorClaims) token.OperatorClaims {
	out := *c
	out.Caps = slices.Clone(c.Caps)
	out.Rooms = slices.Clone(c.Rooms)
	return out
}
