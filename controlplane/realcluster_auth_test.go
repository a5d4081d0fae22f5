package controlplane

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// TestRealStoreRevocationAndRetirementStopCachedTokens runs the auth
// layer against a real raftstore (one Raft node): a token already verified
// (and so cached) stops working on the very next call once its id is
// revoked through the API, and a token of a key retired through the API
// stops working at once too.
func TestRealStoreRevocationAndRetirementStopCachedTokens(t *testing.T) {
	p := pkitest.New(t)
	n1 := startRealNode(t, p, "n1")
	rc := &realCluster{pki: p, nodes: []*realNode{n1}}
	rc.opKid, rc.opPriv = bootstrapRealLeader(t, n1, time.Now())
	c := newClients(dialAs(t, p, n1, "ops", false))
	mint := func(id string, caps ...string) string {
		now := time.Now()
		raw, err := token.MintOperator(rc.opKid, rc.opPriv, token.OperatorClaims{
			ClusterID: realClusterID, Subject: "ops", Caps: caps,
			IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour), ID: id,
		})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	admin := mint("admin-tok", "token.mint", "cluster.admin", "cluster.read")
	reader := mint("reader-tok", "cluster.read")

	for range 2 { // the second call is served from the cache
		if _, err := c.cluster.GetStatus(bearer(realCtx(t), reader), &adminv1.GetStatusRequest{}); err != nil {
			t.Fatalf("status before revocation: %v", err)
		}
	}
	if _, err := c.tokens.Revoke(bearer(realCtx(t), admin), &adminv1.RevokeRequest{TokenId: "reader-tok"}); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_, err := c.cluster.GetStatus(bearer(realCtx(t), reader), &adminv1.GetStatusRequest{})
	wantStatus(t, err, codes.Unauthenticated, "auth: "+token.ReasonRevoked)

	// Rotate in a new operator key, then retire the one that signed admin:
	// admin (cached by the calls above) is refused on its next call.
	if _, err := c.keys.RotateKey(bearer(realCtx(t), admin), &adminv1.RotateKeyRequest{Purpose: "operator"}); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if _, err := c.cluster.GetStatus(bearer(realCtx(t), admin), &adminv1.GetStatusRequest{}); err != nil {
		t.Fatalf("status before retirement: %v", err)
	}
	if _, err := c.keys.RetireKey(bearer(realCtx(t), admin), &adminv1.RetireKeyRequest{Kid: rc.opKid}); err != nil {
		t.Fatalf("retire: %v", err)
	}
	_, err = c.cluster.GetStatus(bearer(realCtx(t), admin), &adminv1.GetStatusRequest{})
	wantStatus(t, err, codes.Unauthenticated, "auth: "+token.ReasonUnknownKey)
}
