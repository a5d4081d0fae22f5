package history

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/zeebo/blake3"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

// IDSize is the length of a node id in bytes.
const IDSize = 32

// ID identifies a node: the BLAKE3-256 hash of its exact transaction bytes.
type ID [IDSize]byte

// String returns the lowercase hex form used on the wire.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses the 64-character hex form of an id. Upper-case hex is
// accepted; String always produces lower case.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("history: node id must be %d hex characters, got %d", 2*IDSize, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("history: node id is not hex: %w", err)
	}
	return id, nil
}

// ParseIDs parses a list of hex ids, naming the position of the first bad one.
func ParseIDs(hexIDs []string) ([]ID, error) {
	ids := make([]ID, len(hexIDs))
	for i, s := range hexIDs {
		id, err := ParseID(s)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		ids[i] = id
	}
	return ids, nil
}

// Strings returns the hex form of each id, never nil (the wire wants arrays,
// not null).
func Strings(ids []ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// idFromBytes converts a 32-byte slice; ok is false for any other length.
func idFromBytes(b []byte) (ID, bool) {
	var id ID
	if len(b) != IDSize {
		return id, false
	}
	copy(id[:], b)
	return id, true
}

// NodeID computes a node's id from its transaction bytes exactly as held.
func NodeID(n *syncv1.Node) ID {
	return blake3.Sum256(n.GetTransactionBytes())
}

// compareIDs orders ids bytewise; frontiers and roots use this order.
func compareIDs(a, b ID) int { return bytes.Compare(a[:], b[:]) }

// SortIDs sorts ids bytewise in place.
func SortIDs(ids []ID) { slices.SortFunc(ids, compareIDs) }

// Root is the room's state digest: the hex BLAKE3-256 of the frontier ids,
// sorted bytewise, concatenated. Two replicas with the same root hold the
// same history (the frontier determines the whole ancestry). The input is
// not modified.
func Root(frontier []ID) string {
	sorted := slices.Clone(frontier)
	SortIDs(sorted)
	h := blake3.New()
	for _, id := range sorted {
		_, _ = h.Write(id[:]) // hash.Hash writes never fail
	}
	return hex.EncodeToString(h.Sum(nil))
}
