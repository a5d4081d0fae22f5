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
// (members, keys, room security state), orders of magnitude below this.
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
// snapshot leaves the old state intact. Observers get OnRestore.
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
	s, err := stateFromSnapshot(&snap)
	if err != nil {
		return fmt.Errorf("raftstore: snapshot: %w", err)
	}
	f.mu.Lock()
	f.s = s
	f.mu.Unlock()
	// The restored state covers every entry up to the snapshot's index;
	// WaitApplied relies on applied saying so.
	if f.snapshotIndex != nil {
		if idx, ok := f.snapshotIndex(); ok {
			f.applied.Store(idx)
		}
	}
	f.progress.broadcast()
	if f.events != nil {
		f.events.enqueue(event{restore: true})
	}
	f.logger.Info("state restored from snapshot", "cluster_id", snap.GetClusterId(),
		"members", len(s.members), "keys", len(s.keys), "rooms", len(s.rooms),
		"revocations", len(s.revocations), "ticks", len(s.ticks))
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

// latestSnapshotIndex returns a function reporting the index of the newest
// snapshot in store. Raft restores the newest snapshot at start, and
// installs a leader's snapshot by writing it as the newest before
// restoring it, so during Restore this is the index being restored. (The
// one exception, a newest snapshot that fails to open at start and an
// older one restored instead, only makes WaitApplied return early for
// entries the log replay is about to apply.)
func latestSnapshotIndex(store raft.SnapshotStore) func() (uint64, bool) {
	return func() (uint64, bool) {
		metas, err := store.List()
		if err != nil || len(metas) == 0 {
			return 0, false
		}
		return metas[0].Index, true
	}
}
