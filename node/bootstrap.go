package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nodalmerge/nodalmerge-go/controlplane"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// capabilityNode is held by node certificates only; tokens never carry it.
const capabilityNode = "cluster.node"

// specCapabilities are the capability classes of SPEC section 4 that tokens
// can carry. The bootstrap token holds all of them, including classes whose
// commands later releases add, so that it stays the all-powerful
// break-glass credential it is documented to be.
func specCapabilities() []string {
	return []string{
		"archive.admin", "archive.read",
		"cluster.admin", "cluster.read",
		"policy.admin",
		"query.admin", "query.read",
		"room.admin", "tick.admin",
		"token.mint", "topology.admin",
	}
}

// tokenCapabilities is every capability a token may hold: the SPEC classes
// and whatever the command registry requires, less cluster.node.
func tokenCapabilities(reg *controlplane.Registry) []string {
	caps := specCapabilities()
	for _, c := range reg.All() {
		if c.Capability != capabilityNode && !slices.Contains(caps, c.Capability) {
			caps = append(caps, c.Capability)
		}
	}
	slices.Sort(caps)
	return caps
}

// initCluster gives a freshly bootstrapped cluster its id and first keys. It
// reports whether it did so; on a cluster that already has an id it does
// nothing, which makes a restart of the bootstrapping node harmless. With a
// KEK (--kek-file) the first keys are sealed before they are proposed, so
// no seed ever rests in the clear, not even in the log's first entries.
func initCluster(ctx context.Context, store *raftstore.Store, now time.Time, kek *keyring.KEK) (bool, error) {
	if store.ClusterID() != "" {
		return false, nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return false, fmt.Errorf("make cluster id: %w", err)
	}
	clusterID := "nm-" + hex.EncodeToString(b[:])
	var keys []*statev1.Key
	for _, p := range []statev1.KeyPurpose{statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN} {
		k, err := keyring.Generate(p, now)
		if err != nil {
			return false, fmt.Errorf("make %s key: %w", keyring.PurposeName(p), err)
		}
		if kek != nil {
			if err := kek.Seal(k); err != nil {
				return false, fmt.Errorf("seal %s key: %w", keyring.PurposeName(p), err)
			}
		}
		keys = append(keys, k)
	}
	cmd := &statev1.Command{Kind: &statev1.Command_InitCluster{InitCluster: &statev1.InitCluster{ClusterId: clusterID, Keys: keys}}}
	if _, err := store.Apply(ctx, cmd); err != nil {
		return false, fmt.Errorf("initialise cluster: %w", err)
	}
	return true, nil
}

// mintOperatorToken signs an operator token with the cluster's active
// operator key, opened with kek (--kek-file; nil: none) when it is sealed.
func mintOperatorToken(store *raftstore.Store, kek *keyring.KEK, subject string, caps []string, ttl time.Duration, now time.Time) (string, token.OperatorClaims, error) {
	kid, priv, err := keyring.SignerWith(store.Keys(), statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, now, kek)
	if err != nil {
		return "", token.OperatorClaims{}, fmt.Errorf("operator signing key: %w", err)
	}
	id, err := token.NewID()
	if err != nil {
		return "", token.OperatorClaims{}, err
	}
	claims := token.OperatorClaims{
		ClusterID: store.ClusterID(),
		Subject:   subject,
		Caps:      caps,
		IssuedAt:  now,
		ExpiresAt: now.Add(ttl),
		ID:        id,
	}
	raw, err := token.MintOperator(kid, priv, claims)
	if err != nil {
		return "", token.OperatorClaims{}, fmt.Errorf("mint operator token: %w", err)
	}
	return raw, claims, nil
}

// tokenFileStatus says whether the bootstrap token file still holds a token
// the cluster accepts, for the banner. It never returns the token.
func tokenFileStatus(path string, store *raftstore.Store, now time.Time) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "missing: restart with --recover-operator-token to write a fresh one"
	}
	claims, err := token.VerifyOperator(strings.TrimSpace(string(raw)), token.KeyringKeyFunc(store.Keys(), now), store.ClusterID(), now)
	if err != nil {
		return fmt.Sprintf("no longer valid (%v): restart with --recover-operator-token to write a fresh one", err)
	}
	return "valid until " + claims.ExpiresAt.UTC().Format(time.RFC3339)
}
