package raftstore

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

// Reads are served from this node's FSM: fast, and possibly behind the
// leader. For a linearizable read, get an index from ReadIndex on the
// leader and WaitApplied(index) on the reading node first. Every result is
// a deep copy the caller may keep and modify.

// ClusterID is the id fixed by InitCluster, or "" before it.
func (s *Store) ClusterID() string { return s.fsm.getClusterID() }

// Members returns the replicated member records, sorted by node id.
func (s *Store) Members() []*statev1.Member { return s.fsm.getMembers() }

// Member returns the member record of nodeID.
func (s *Store) Member(nodeID string) (*statev1.Member, bool) {
	m := s.fsm.getMember(nodeID)
	return m, m != nil
}

// Keys returns the keyring, sorted by kid. The keys include private seeds:
// callers must never log them (log kids).
func (s *Store) Keys() []*statev1.Key { return s.fsm.getKeys() }

// Dump returns the whole state in canonical form, the same form as a Raft
// snapshot: two replicas with equal state return proto.Equal dumps that
// marshal deterministically to equal bytes. Like Keys, it includes private
// seeds.
func (s *Store) Dump() *statev1.Snapshot { return s.fsm.dump() }

// Rooms returns every room record (security state and placement), sorted
// by name. A room nobody configured has no record: it is open, has no keys
// or policy, and is placed on every node.
func (s *Store) Rooms() (out []*statev1.Room) {
	s.fsm.read(func(st *state) { out = sortedRooms(st.rooms) })
	return out
}

// Room returns the record of one room.
func (s *Store) Room(name string) (out *statev1.Room, ok bool) {
	s.fsm.read(func(st *state) {
		if r, found := st.rooms[name]; found {
			out, ok = proto.Clone(r).(*statev1.Room), true
		}
	})
	return out, ok
}

// PolicyAt returns the policy entry of room in force at lamport: the last
// entry whose effective_lamport is at or below it. ok is false when the
// room has no entry that early (the room default applies).
func (s *Store) PolicyAt(room string, lamport uint64) (out *statev1.PolicyEntry, ok bool) {
	s.fsm.read(func(st *state) {
		if r, found := st.rooms[room]; found {
			if e, found := policyAt(r.GetPolicy(), lamport); found {
				out, ok = proto.Clone(e).(*statev1.PolicyEntry), true
			}
		}
	})
	return out, ok
}

// LastPolicyEntry returns a copy of the newest entry of room's policy
// timeline (the one with the highest effective_lamport), copying nothing
// else of the room: the timeline grows by one entry per SetPolicy, so
// copying the room on every write would make writes cost O(timeline).
func (s *Store) LastPolicyEntry(room string) (out *statev1.PolicyEntry, ok bool) {
	s.fsm.read(func(st *state) {
		if r, found := st.rooms[room]; found {
			if p := r.GetPolicy(); len(p) > 0 {
				out, ok = proto.Clone(p[len(p)-1]).(*statev1.PolicyEntry), true
			}
		}
	})
	return out, ok
}

// PolicyEntryAtIndex returns a copy of the entry of room's policy timeline
// that the command at raftIndex appended (its raft_index), so a proposer
// or an observer of that command learns the effective_lamport the entry
// really got. Entries are appended in log order, so the search runs from
// the newest entry and usually stops at it.
func (s *Store) PolicyEntryAtIndex(room string, raftIndex uint64) (out *statev1.PolicyEntry, ok bool) {
	s.fsm.read(func(st *state) {
		r, found := st.rooms[room]
		if !found || raftIndex == 0 {
			return
		}
		p := r.GetPolicy()
		for i := len(p) - 1; i >= 0; i-- {
			if idx := p[i].GetRaftIndex(); idx == raftIndex {
				out, ok = proto.Clone(p[i]).(*statev1.PolicyEntry), true
				return
			} else if idx != 0 && idx < raftIndex {
				return // older entries have lower indices
			}
		}
	})
	return out, ok
}

// ViewRoom calls fn with the stored record of room, under the state's read
// lock, and reports whether the room has a record (fn is not called when it
// has none). It lets a reader convert just what it needs without copying
// the room first. fn must not keep, modify or leak any part of r after it
// returns, must be quick (applies wait for it), and must not call the
// Store (a read lock taken again while an apply waits deadlocks).
func (s *Store) ViewRoom(room string, fn func(r *statev1.Room)) (ok bool) {
	s.fsm.read(func(st *state) {
		if r, found := st.rooms[room]; found {
			ok = true
			fn(r)
		}
	})
	return ok
}

// ViewKeys calls fn with each stored keyring key, under the state's read
// lock and in no particular order; with kid != "" only the key of that kid
// (if any). It spares a per-request reader (room admission) the copy of
// the whole keyring that Keys makes, which grows with every rotation. fn
// has ViewRoom's obligations: it must not keep, modify or leak the key,
// must be quick, and must not call the Store.
func (s *Store) ViewKeys(kid string, fn func(k *statev1.Key)) {
	s.fsm.read(func(st *state) {
		if kid != "" {
			if k, found := st.keys[kid]; found {
				fn(k)
			}
			return
		}
		for _, k := range st.keys {
			fn(k)
		}
	})
}

// VerifyingKey returns a copy of the public key with kid if it may verify
// signatures for purpose at now (keyring.VerifyKey's rule), else an error
// wrapping keyring.ErrUnknownKey. Unlike Keys it copies one public key and
// never the private seeds, so a token verifier can call it on every
// request.
func (s *Store) VerifyingKey(purpose statev1.KeyPurpose, kid string, now time.Time) (pub ed25519.PublicKey, err error) {
	s.fsm.read(func(st *state) {
		var keys []*statev1.Key
		if k, found := st.keys[kid]; found {
			keys = []*statev1.Key{k}
		}
		pub, err = keyring.VerifyKey(keys, purpose, kid, now)
	})
	return pub, err
}

// Revocations returns the revocations in force or awaiting garbage
// collection, sorted by (token_id, room, peer_pubkey).
func (s *Store) Revocations() (out []*statev1.Revocation) {
	s.fsm.read(func(st *state) { out = sortedRevocations(st.revocations) })
	return out
}

// IsRevoked reports whether tokenID (if not empty) or the peer in room (if
// both are set) is revoked at now. Lapsed revocations do not count, even
// before the FSM has dropped them.
func (s *Store) IsRevoked(tokenID, room string, peer []byte, now time.Time) (revoked bool) {
	s.fsm.read(func(st *state) { revoked = st.isRevoked(tokenID, room, peer, now) })
	return revoked
}

// Ticks returns the rooms' tick schedules, sorted by room.
func (s *Store) Ticks() (out []*statev1.TickSchedule) {
	s.fsm.read(func(st *state) { out = sortedTicks(st.ticks) })
	return out
}

// Snapshot takes a Raft snapshot now (and compacts the log behind it) and
// returns the index it covers (TakeSnapshot also reports the term and
// honours a context). When nothing was applied since the last
// snapshot Raft refuses; the error then wraps raft.ErrNothingNewToSnapshot.
func (s *Store) Snapshot() (uint64, error) {
	f := s.raft.Snapshot()
	if err := f.Error(); err != nil {
		return 0, s.raftError("snapshot", err)
	}
	meta, rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("raftstore: open snapshot just taken: %w", err)
	}
	_ = rc.Close()
	s.logger.Info("snapshot taken", "index", meta.Index, "term", meta.Term, "bytes", meta.Size)
	return meta.Index, nil
}
