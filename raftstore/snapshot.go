package raftstore

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// maxSnapshotBytes bounds what Restore reads, so that a corrupt or hostile
// snapshot cannot exhaust memory. Cluster state is small control data
// (members and keys), orders of magnitude below this.
const maxSnapshotBytes = 64 << 20

// marshalSnapshot encodes the canonical state. Deterministic marshalling
// plus sorted repeated fields make equal states byte-equal, which lets
// tests (and operators diffing dumps) compare replicas exactly.
func marshalSnapshot(s *statev1.Snapshot) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("raftstore: marshal snapshot: %w", err)
	}
	return b, nil
}

// Snapshot captures the state for Raft. The state is small, so it is
// encoded right here under the read lock; Persist then only writes bytes
// and never races with Apply.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	b, err := marshalSnapshot(f.dump())
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{data: b}, nil
}

// Restore replaces the whole state with the snapshot in rc. Raft calls it
// on start (latest local snapshot) and when the leader installs one. The
// snapshot is validated completely before any state is touched, so a bad
// snapshot leaves the old state intact.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(io.LimitReader(rc, maxSnapshotBytes+1))
	if err != nil {
		return fmt.Errorf("raftstore: read snapshot: %w", err)
	}
	if len(b) > maxSnapshotBytes {
		return fmt.Errorf("raftstore: snapshot larger than %d bytes", maxSnapshotBytes)
	}
	return f.restoreBytes(b)
}

func (f *fsm) restoreBytes(b []byte) error {
	var snap statev1.Snapshot
	if err := proto.Unmarshal(b, &snap); err != nil {
		return fmt.Errorf("raftstore: decode snapshot: %w", err)
	}
	members := make(map[string]*statev1.Member, len(snap.GetMembers()))
	for _, m := range snap.GetMembers() {
		if err := validateMember(m); err != nil {
			return fmt.Errorf("raftstore: snapshot member: %w", err)
		}
		if _, dup := members[m.GetNodeId()]; dup {
			return fmt.Errorf("raftstore: snapshot has duplicate member %q", m.GetNodeId())
		}
		members[m.GetNodeId()] = m
	}
	keys := make(map[string]*statev1.Key, len(snap.GetKeys()))
	for _, k := range snap.GetKeys() {
		if err := validateKey(k); err != nil {
			return fmt.Errorf("raftstore: snapshot key: %w", err)
		}
		if _, dup := keys[k.GetKid()]; dup {
			return fmt.Errorf("raftstore: snapshot has duplicate kid %q", k.GetKid())
		}
		keys[k.GetKid()] = k
	}
	f.mu.Lock()
	f.clusterID = snap.GetClusterId()
	f.members = members
	f.keys = keys
	f.mu.Unlock()
	f.logger.Info("state restored from snapshot", "cluster_id", snap.GetClusterId(),
		"members", len(members), "keys", len(keys))
	return nil
}

// fsmSnapshot is an encoded point-in-time state.
type fsmSnapshot struct {
	data []byte
}

// Persist writes the encoded state to the sink. On failure the sink is
// cancelled so Raft discards the partial snapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftstore: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("raftstore: close snapshot: %w", err)
	}
	return nil
}

// Release is a no-op: the snapshot holds only an immutable byte slice.
func (s *fsmSnapshot) Release() {}
