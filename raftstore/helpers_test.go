package raftstore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// testTimeout bounds every cluster operation in tests; generous because
// the race detector on a shared 2-core machine slows Raft down a lot.
const testTimeout = 20 * time.Second

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newKey makes a real Ed25519 keyring key.
func newKey(t testing.TB, kid string, purpose statev1.KeyPurpose) *statev1.Key {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &statev1.Key{
		Kid:           kid,
		Purpose:       purpose,
		State:         statev1.KeyState_KEY_STATE_ACTIVE,
		PublicKey:     pub,
		PrivateSeed:   priv.Seed(),
		CreatedUnixMs: 1_700_000_000_000,
	}
}

func initCmd(clusterID string, keys ...*statev1.Key) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_InitCluster{
		InitCluster: &statev1.InitCluster{ClusterId: clusterID, Keys: keys},
	}}
}

func putKeyCmd(k *statev1.Key) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_PutKey{PutKey: &statev1.PutKey{Key: k}}}
}

func putMemberCmd(m *statev1.Member) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_PutMember{PutMember: &statev1.PutMember{Member: m}}}
}

func removeMemberCmd(id string) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_RemoveMember{RemoveMember: &statev1.RemoveMember{NodeId: id}}}
}

// testLogger logs through t.Log when -v is set, else discards.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// openNode opens a Store for nodeID on 127.0.0.1:0 with real node
// certificates from p; dir "" keeps it in memory. The store is closed at
// test cleanup (Close is idempotent, so tests may close earlier).
func openNode(t testing.TB, p *pkitest.PKI, nodeID, dir string) *Store {
	t.Helper()
	return openNodeWith(t, p, nodeID, dir, nil)
}

// openNodeWith is openNode with a chance to adjust the Config (hooks, log
// store) before Open.
func openNodeWith(t testing.TB, p *pkitest.PKI, nodeID, dir string, adjust func(*Config)) *Store {
	t.Helper()
	m := p.Node(t, nodeID)
	cfg := Config{
		NodeID:     nodeID,
		Dir:        dir,
		Bind:       "127.0.0.1:0",
		ServerTLS:  m.NodeServerConfig(),
		ClientTLS:  m.ClientConfig(""),
		AdminAddr:  "127.0.0.1:17879",
		PublicAddr: "127.0.0.1:17878",
		Logger:     testLogger(t).With("test_node", nodeID),
	}
	if adjust != nil {
		adjust(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("open %s: %v", nodeID, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s: %v", nodeID, err)
		}
	})
	return s
}

// bootstrapLeader bootstraps s as a single-node cluster and waits until it
// leads and has applied everything before it.
func bootstrapLeader(t testing.TB, s *Store) {
	t.Helper()
	if err := s.BootstrapSingle(); err != nil {
		t.Fatal(err)
	}
	awaitSelfLeader(t, s)
}

func awaitSelfLeader(t testing.TB, s *Store) {
	t.Helper()
	ctx := testContext(t)
	id, err := s.WaitForLeader(ctx)
	if err != nil {
		t.Fatalf("wait for leader: %v", err)
	}
	if id != s.NodeID() {
		t.Fatalf("leader is %q, want %q", id, s.NodeID())
	}
	if err := s.Barrier(ctx); err != nil {
		t.Fatalf("barrier: %v", err)
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
