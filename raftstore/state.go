package raftstore

import (
	"bytes"
	"cmp"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// state is the replicated cluster state. It is owned by the fsm and only
// touched under its lock; every message in it belongs to it alone.
//
// Invariants kept by every apply and checked by restore, so that dump is
// canonical without sorting nested lists: a room's keys are sorted by kid,
// its policy by effective_lamport (strictly ascending), its placement by
// node id without duplicates, its registered queries by name.
type state struct {
	clusterID   string
	members     map[string]*statev1.Member        // by node id
	keys        map[string]*statev1.Key           // by kid
	rooms       map[string]*statev1.Room          // by name
	revocations map[revTarget]*statev1.Revocation // by target
	ticks       map[string]*statev1.TickSchedule  // by room
}

// revTarget is what a revocation applies to: a token id, or a peer in a
// room. At most one revocation is kept per target.
type revTarget struct {
	tokenID string
	room    string
	peer    string // the 32 key bytes as a string, usable as a map key
}

func targetOf(r *statev1.Revocation) revTarget {
	return revTarget{tokenID: r.GetTokenId(), room: r.GetRoom(), peer: string(r.GetPeerPubkey())}
}

func newState() *state {
	return &state{
		members:     make(map[string]*statev1.Member),
		keys:        make(map[string]*statev1.Key),
		rooms:       make(map[string]*statev1.Room),
		revocations: make(map[revTarget]*statev1.Revocation),
		ticks:       make(map[string]*statev1.TickSchedule),
	}
}

// dump builds the canonical form of the state: repeated fields sorted so
// that equal states marshal (deterministically) to equal bytes. The result
// shares no memory with s.
func (s *state) dump() *statev1.Snapshot {
	return &statev1.Snapshot{
		ClusterId:   s.clusterID,
		Members:     sortedMembers(s.members),
		Keys:        sortedKeys(s.keys),
		Rooms:       sortedRooms(s.rooms),
		Revocations: sortedRevocations(s.revocations),
		Ticks:       sortedTicks(s.ticks),
	}
}

// sortedClones returns deep copies of the map's values ordered by less.
func sortedClones[K comparable, V proto.Message](in map[K]V, less func(a, b V) int) []V {
	out := make([]V, 0, len(in))
	for _, v := range in {
		out = append(out, proto.Clone(v).(V))
	}
	slices.SortFunc(out, less)
	return out
}

func sortedMembers(in map[string]*statev1.Member) []*statev1.Member {
	return sortedClones(in, func(a, b *statev1.Member) int { return cmp.Compare(a.GetNodeId(), b.GetNodeId()) })
}

func sortedKeys(in map[string]*statev1.Key) []*statev1.Key {
	return sortedClones(in, func(a, b *statev1.Key) int { return cmp.Compare(a.GetKid(), b.GetKid()) })
}

func sortedRooms(in map[string]*statev1.Room) []*statev1.Room {
	return sortedClones(in, func(a, b *statev1.Room) int { return cmp.Compare(a.GetName(), b.GetName()) })
}

func sortedTicks(in map[string]*statev1.TickSchedule) []*statev1.TickSchedule {
	return sortedClones(in, func(a, b *statev1.TickSchedule) int { return cmp.Compare(a.GetRoom(), b.GetRoom()) })
}

// sortedRevocations orders by (token_id, room, peer_pubkey), as the
// Snapshot message documents.
func sortedRevocations(in map[revTarget]*statev1.Revocation) []*statev1.Revocation {
	return sortedClones(in, func(a, b *statev1.Revocation) int {
		return cmp.Or(cmp.Compare(a.GetTokenId(), b.GetTokenId()), cmp.Compare(a.GetRoom(), b.GetRoom()),
			bytes.Compare(a.GetPeerPubkey(), b.GetPeerPubkey()))
	})
}

// roomKeyIndex finds the key with kid in a room's sorted key list.
func roomKeyIndex(r *statev1.Room, kid string) (int, bool) {
	keys := r.GetKeys()
	i := sort.Search(len(keys), func(i int) bool { return keys[i].GetKid() >= kid })
	return i, i < len(keys) && keys[i].GetKid() == kid
}

// insertRoomKey adds k to r keeping the keys sorted by kid. The caller has
// checked the kid is new.
func insertRoomKey(r *statev1.Room, k *statev1.RoomKey) {
	i, _ := roomKeyIndex(r, k.GetKid())
	r.Keys = slices.Insert(r.Keys, i, k)
}

// policyAt returns the entry of a policy timeline (ascending by
// effective_lamport) in force at lamport: the last one at or below it.
func policyAt(entries []*statev1.PolicyEntry, lamport uint64) (*statev1.PolicyEntry, bool) {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].GetEffectiveLamport() > lamport })
	if i == 0 {
		return nil, false
	}
	return entries[i-1], true
}
