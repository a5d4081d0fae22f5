package raftstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// eventually polls cond until it holds or ctx ends. Used only where Raft
// offers no signal (a follower applying an entry).
func eventually(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func TestThreeNodeCluster(t *testing.T) {
	p := pkitest.New(t)
	n1 := openNode(t, p, "n1", t.TempDir())
	n2 := openNode(t, p, "n2", t.TempDir())
	n3 := openNode(t, p, "n3", t.TempDir())
	bootstrapLeader(t, n1)
	ctx := testContext(t)

	if _, err := n1.Apply(ctx, initCmd("three", newKey(t, "k1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN))); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{n2, n3} {
		if err := n1.AddVoter(ctx, s.NodeID(), s.RaftAddr()); err != nil {
			t.Fatalf("add voter %s: %v", s.NodeID(), err)
		}
	}
	// The new voters learn the leader (over mTLS) from its heartbeats.
	for _, s := range []*Store{n2, n3} {
		if id, err := s.WaitForLeader(ctx); err != nil || id != "n1" {
			t.Fatalf("%s: leader %q, %v; want n1", s.NodeID(), id, err)
		}
	}

	k2 := newKey(t, "k2", statev1.KeyPurpose_KEY_PURPOSE_OPERATOR)
	idx, err := n1.Apply(ctx, putKeyCmd(k2))
	if err != nil {
		t.Fatal(err)
	}
	want := mustMarshal(t, n1.Dump())
	for _, s := range []*Store{n2, n3} {
		eventually(t, ctx, fmt.Sprintf("%s to apply index %d", s.NodeID(), idx), func() bool {
			return bytes.Equal(mustMarshal(t, s.Dump()), want)
		})
		if keys := s.Keys(); len(keys) != 2 || !proto.Equal(keys[1], k2) {
			t.Fatalf("%s keys %v", s.NodeID(), keys)
		}
	}

	// Followers refuse leader-only work and say who leads.
	_, err = n2.Apply(ctx, putKeyCmd(k2))
	var nle *NotLeaderError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nle) {
		t.Fatalf("Apply on follower: %v, want ErrNotLeader", err)
	}
	if nle.LeaderID != "n1" || nle.LeaderAddr != n1.RaftAddr() {
		t.Fatalf("NotLeaderError names %s at %s, want n1 at %s", nle.LeaderID, nle.LeaderAddr, n1.RaftAddr())
	}
	if err := n3.Barrier(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Barrier on follower: %v, want ErrNotLeader", err)
	}
	if err := n3.AddVoter(ctx, "n9", "127.0.0.1:9"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("AddVoter on follower: %v, want ErrNotLeader", err)
	}
	if _, err := n2.EnsureSelfMember(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("EnsureSelfMember on follower: %v, want ErrNotLeader", err)
	}

	// Status joins the Raft configuration with member records.
	if _, err := n1.EnsureSelfMember(ctx); err != nil {
		t.Fatal(err)
	}
	st := n1.Status()
	if len(st.Members) != 3 {
		t.Fatalf("leader status members %+v", st.Members)
	}
	for i, s := range []*Store{n1, n2, n3} {
		m := st.Members[i]
		wantState := "follower"
		if s == n1 {
			wantState = "leader"
		}
		if m.NodeID != s.NodeID() || m.RaftAddr != s.RaftAddr() || !m.Voter || m.State != wantState {
			t.Fatalf("member %d: %+v", i, m)
		}
	}
	if st.Members[0].AdminAddr != "127.0.0.1:17879" || st.Members[1].AdminAddr != "" {
		t.Fatalf("member records not joined: %+v", st.Members)
	}
	if fst := n2.Status(); fst.State != "follower" || fst.LeaderID != "n1" || len(fst.Members) != 3 {
		t.Fatalf("follower status %+v", fst)
	}

	// Removing a voter shrinks the configuration.
	if err := n1.RemoveServer(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	if st := n1.Status(); len(st.Members) != 2 || st.Members[1].NodeID != "n2" {
		t.Fatalf("after RemoveServer: %+v", st.Members)
	}
	// The two remaining voters still commit.
	if _, err := n1.Apply(ctx, removeMemberCmd("n3")); err != nil {
		t.Fatal(err)
	}
}

// TestRaftPortRejectsOperatorCert: a peer holding a valid operator
// certificate from the same CA cannot speak Raft. Its RPCs fail at the TLS
// layer and do not reach Raft (the follower's term is unchanged), while
// the same RPC from a node certificate goes through.
func TestRaftPortRejectsOperatorCert(t *testing.T) {
	p := pkitest.New(t)
	n1 := openNode(t, p, "n1", "")
	n2 := openNode(t, p, "n2", "")
	bootstrapLeader(t, n1)
	ctx := testContext(t)
	if err := n1.AddVoter(ctx, "n2", n2.RaftAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	termBefore := n2.Status().Term

	// A far higher term would depose the leader if Raft ever saw it.
	hostile := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("rogue"), Addr: []byte("127.0.0.1:1")},
		Term:      termBefore + 1000,
	}
	op := p.Operator(t, "alice")
	rogue := newTestTransport(t, op)
	var resp raft.AppendEntriesResponse
	err := rogue.AppendEntries("n2", raft.ServerAddress(n2.RaftAddr()), hostile, &resp)
	if err == nil || !strings.Contains(err.Error(), "tls: bad certificate") {
		t.Fatalf("operator certificate RPC: %v, want a TLS bad certificate error", err)
	}
	t.Logf("operator cert rejected: %v", err)

	// Also rejected for a raw TLS client: with TLS 1.3 the client's side of
	// the handshake may complete, and the server's alert arrives on read.
	conn, err := (&tls.Dialer{Config: op.ClientConfig("")}).DialContext(ctx, "tcp", n1.RaftAddr())
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(testTimeout))
		_, _ = conn.Write([]byte{0})
		_, err = conn.Read(make([]byte, 1))
		_ = conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("raw TLS client with operator certificate: %v, want a certificate error", err)
	}

	if n2.Status().Term != termBefore || !n1.IsLeader() {
		t.Fatal("rejected RPC changed the cluster's term or leadership")
	}

	// Control: a node certificate's harmless RPC (stale term) is served.
	stale := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n4"), Addr: []byte("127.0.0.1:1")},
		Term:      0,
	}
	node := newTestTransport(t, p.Node(t, "n4"))
	if err := node.AppendEntries("n2", raft.ServerAddress(n2.RaftAddr()), stale, &resp); err != nil {
		t.Fatalf("node certificate RPC failed: %v", err)
	}
	if resp.Success || resp.Term != termBefore {
		t.Fatalf("stale AppendEntries answered success=%v term=%d, want false, %d", resp.Success, resp.Term, termBefore)
	}
}

// newTestTransport is a bare Raft network transport over this package's
// stream layer with the given material, closed at cleanup.
func newTestTransport(t testing.TB, m *pki.Material) *raft.NetworkTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stream := newTLSStreamLayer(ln, ln.Addr(), m.NodeServerConfig(), m.ClientConfig(""))
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 1,
		Timeout: 5 * time.Second,
		Logger:  newHCLogAdapter(testLogger(t), "test-transport"),
	})
	t.Cleanup(func() { _ = trans.Close() })
	return trans
}
