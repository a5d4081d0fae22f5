package controlplane

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// testClock is a settable clock for the server under test.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// cacheEnv is an env whose clock the test moves, with a client calling
// cluster.status.
func cacheEnv(t *testing.T) (*env, *testClock, adminv1.ClusterServiceClient) {
	t.Helper()
	clock := &testClock{}
	e := newEnv(t, envOptions{clock: clock.Now})
	clock.set(e.now)
	return e, clock, adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
}

// statusAs calls cluster.status with raw as the bearer token.
func statusAs(t *testing.T, client adminv1.ClusterServiceClient, raw string) error {
	t.Helper()
	_, err := client.GetStatus(bearer(callCtx(t), raw), &adminv1.GetStatusRequest{})
	return err
}

// TestTokenCacheRemembersVerifiedTokens: a verified token is cached once
// (keyed by its hash) and keeps working from the cache; failures are not
// cached.
func TestTokenCacheRemembersVerifiedTokens(t *testing.T) {
	e, _, client := cacheEnv(t)
	good := e.mint(t, e.operatorClaims("cluster.read"))
	for i := range 3 {
		if err := statusAs(t, client, good); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := e.srv.tokens.len(); n != 1 {
		t.Fatalf("cache holds %d tokens after three calls with one token, want 1", n)
	}
	if e.srv.tokens.get(tokenCacheKey(good)) == nil {
		t.Fatal("the verified token is not cached under its hash")
	}
	// A forged variant of a cached token is verified in full and refused,
	// and not cached.
	wantStatus(t, statusAs(t, client, tamper(t, good)), codes.Unauthenticated, "auth: signature verification failed")
	otherKid, otherPriv := otherSigner(t, e.now)
	unknown := mintWith(t, otherKid, otherPriv, e.operatorClaims("cluster.read"))
	wantStatus(t, statusAs(t, client, unknown), codes.Unauthenticated, "auth: unknown key id")
	if n := e.srv.tokens.len(); n != 1 {
		t.Fatalf("cache holds %d tokens after two failures, want 1 (failures are not cached)", n)
	}
}

// TestCachedTokenRefusedAfterKeyRetirement: retiring the key that signed a
// cached token refuses the token on the very next call, with the reason
// an uncached token gets, and evicts it.
func TestCachedTokenRefusedAfterKeyRetirement(t *testing.T) {
	e, _, client := cacheEnv(t)
	good := e.mint(t, e.operatorClaims("cluster.read"))
	if err := statusAs(t, client, good); err != nil {
		t.Fatal(err)
	}
	e.cluster.setKeyState(e.kid, statev1.KeyState_KEY_STATE_RETIRED)
	before := e.authFailures(t, token.ReasonUnknownKey)
	wantStatus(t, statusAs(t, client, good), codes.Unauthenticated, "auth: "+token.ReasonUnknownKey)
	if got := e.authFailures(t, token.ReasonUnknownKey); got != before+1 {
		t.Errorf("auth failures{reason=unknown key id} = %v, want %v", got, before+1)
	}
	if e.srv.tokens.get(tokenCacheKey(good)) != nil {
		t.Error("a token of a retired key is still cached")
	}
	// Restoring the key (a test-only move) makes the same token verify
	// again: the refusal came from the keyring, not from a cached failure.
	e.cluster.setKeyState(e.kid, statev1.KeyState_KEY_STATE_ACTIVE)
	if err := statusAs(t, client, good); err != nil {
		t.Fatalf("token after the key verifies again: %v", err)
	}
}

// TestCachedTokenRefusedAfterKeyReplaced: a key under the same kid with
// another public key must not let a cached token through.
func TestCachedTokenRefusedAfterKeyReplaced(t *testing.T) {
	e, _, client := cacheEnv(t)
	good := e.mint(t, e.operatorClaims("cluster.read"))
	if err := statusAs(t, client, good); err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.cluster.mu.Lock()
	for _, k := range e.cluster.keys {
		if k.GetKid() == e.kid {
			k.PublicKey = pub
		}
	}
	e.cluster.mu.Unlock()
	wantStatus(t, statusAs(t, client, good), codes.Unauthenticated, "auth: "+token.ReasonBadSignature)
}

// TestCachedTokenRefusedAfterExpiry: the cache never outlives the token.
func TestCachedTokenRefusedAfterExpiry(t *testing.T) {
	e, clock, client := cacheEnv(t)
	claims := e.operatorClaims("cluster.read")
	claims.ExpiresAt = e.now.Add(10 * time.Second)
	short := e.mint(t, claims)
	if err := statusAs(t, client, short); err != nil {
		t.Fatal(err)
	}
	clock.set(e.now.Add(9 * time.Second))
	if err := statusAs(t, client, short); err != nil {
		t.Fatalf("before exp: %v", err)
	}
	clock.set(e.now.Add(10 * time.Second))
	wantStatus(t, statusAs(t, client, short), codes.Unauthenticated, "auth: "+token.ReasonExpired)
	if n := e.srv.tokens.len(); n != 0 {
		t.Fatalf("cache holds %d tokens after the only one expired, want 0", n)
	}
}

// TestRevokedTokenRefused: revoking a token id refuses it at once, whether
// it was cached or never seen, and the refusal is audited and counted.
func TestRevokedTokenRefused(t *testing.T) {
	e, _, client := cacheEnv(t)
	admin := e.operatorClaims("token.mint")
	admin.ID = "tok-admin"
	tokens := adminv1.NewTokenServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
	victim := e.mint(t, e.operatorClaims("cluster.read")) // jti tok-1
	fresh := e.operatorClaims("cluster.read")
	fresh.Subject = "bob" // same jti, never presented before the revocation
	unseen := e.mint(t, fresh)
	if err := statusAs(t, client, victim); err != nil {
		t.Fatal(err)
	}
	e.audit.take()

	if _, err := tokens.Revoke(bearer(callCtx(t), e.mint(t, admin)), &adminv1.RevokeRequest{TokenId: "tok-1"}); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	before := e.authFailures(t, token.ReasonRevoked)
	for name, raw := range map[string]string{"cached": victim, "unseen": unseen} {
		wantStatus(t, statusAs(t, client, raw), codes.Unauthenticated, "auth: token revoked")
		if got := e.authFailures(t, token.ReasonRevoked); got != before+1 {
			t.Errorf("%s: auth failures{reason=token revoked} = %v, want %v", name, got, before+1)
		}
		before++
	}
	var denies int
	for _, ev := range e.audit.take() {
		if ev.Command == "cluster.status" && ev.Decision == DecisionDeny && ev.Reason == "auth: token revoked" {
			denies++
		}
	}
	if denies != 2 {
		t.Errorf("audited %d revoked-token denials of cluster.status, want 2", denies)
	}
}

// TestTokenCacheBounded: the cache holds at most its size, evicting the
// least recently used token; an evicted token still verifies (in full).
func TestTokenCacheBounded(t *testing.T) {
	const size = 3
	e := newEnv(t, envOptions{tokenCacheSize: size})
	client := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
	var raws []string
	for i := range size + 2 {
		c := e.operatorClaims("cluster.read")
		c.ID = fmt.Sprintf("tok-%d", i)
		raws = append(raws, e.mint(t, c))
	}
	for i, raw := range raws[:size] {
		if err := statusAs(t, client, raw); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	// Touch token 0 so token 1 is the least recently used, then add two.
	if err := statusAs(t, client, raws[0]); err != nil {
		t.Fatal(err)
	}
	for _, raw := range raws[size:] {
		if err := statusAs(t, client, raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.srv.tokens.len(); n != size {
		t.Fatalf("cache holds %d tokens, want its size %d", n, size)
	}
	for i, want := range []bool{true, false, false, true, true} {
		if got := e.srv.tokens.get(tokenCacheKey(raws[i])) != nil; got != want {
			t.Errorf("token %d cached = %v, want %v", i, got, want)
		}
	}
	if err := statusAs(t, client, raws[1]); err != nil {
		t.Fatalf("an evicted token must verify again: %v", err)
	}
}

// TestTokenCacheDisabled: a negative size turns the cache off and tokens
// are verified on every call.
func TestTokenCacheDisabled(t *testing.T) {
	e := newEnv(t, envOptions{tokenCacheSize: -1})
	client := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "authorization", "Bearer "+e.mint(t, e.operatorClaims("cluster.read")))
	for range 2 {
		if _, err := client.GetStatus(ctx, &adminv1.GetStatusRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if e.srv.tokens != nil {
		t.Fatal("TokenCacheSize -1 left a cache in place")
	}
}
