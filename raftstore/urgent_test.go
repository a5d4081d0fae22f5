package raftstore

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// TestUrgentCommandsAppendABarrier: a command that closes sessions
// elsewhere (here a revocation) is followed by a barrier entry, the message
// that tells followers it is committed without waiting for a heartbeat;
// an ordinary command is not.
func TestUrgentCommandsAppendABarrier(t *testing.T) {
	s := openNode(t, pkitest.New(t), "n1", "")
	bootstrapLeader(t, s)
	ctx := testContext(t)
	if _, err := s.Apply(ctx, initCmd("c1")); err != nil {
		t.Fatal(err)
	}
	settled := func(want uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for s.raft.LastIndex() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := s.Barrier(ctx); err != nil { // everything queued is in the log
			t.Fatal(err)
		}
	}

	idx, err := s.Apply(ctx, &statev1.Command{Kind: &statev1.Command_Revoke{Revoke: &statev1.Revoke{
		Revocation: &statev1.Revocation{TokenId: "0123456789abcdef0123456789abcdef"}}}})
	if err != nil {
		t.Fatal(err)
	}
	settled(idx + 1)
	var l raft.Log
	if err := s.logs.GetLog(idx+1, &l); err != nil || l.Type != raft.LogBarrier {
		t.Fatalf("entry after the revocation: %v %v, want a barrier", l.Type, err)
	}

	idx, err = s.Apply(ctx, putKeyCmd(newKey(t, "k2", statev1.KeyPurpose_KEY_PURPOSE_OPERATOR)))
	if err != nil {
		t.Fatal(err)
	}
	if last := s.raft.LastIndex(); last != idx {
		t.Fatalf("log ends at %d after an ordinary command at %d: something was appended after it", last, idx)
	}
}
