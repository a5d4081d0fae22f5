package tick

import (
	"strings"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

// Key prefixes of the tick's input and output. The intent prefix of a
// schedule narrows which keys are read; it does not move the mapping:
// intent/x/y is always mirrored to world/x/y (the reference strips the
// literal "intent/" after filtering by the schedule's prefix, so a prefix
// outside intent/ mirrors nothing there either).
const (
	DefaultIntentPrefix = "intent/"
	intentRoot          = "intent/"
	worldRoot           = "world/"
)

// WorldPath maps an intent key to the world key a tick writes, false when
// the key is not under intent/.
func WorldPath(intentPath string) (string, bool) {
	rest, ok := strings.CutPrefix(intentPath, intentRoot)
	if !ok || rest == "" {
		return "", false
	}
	return worldRoot + rest, true
}

// Plan returns the ops one tick writes: for every live key under prefix
// whose world key does not already hold the same value, a set of the world
// key to that value, in path order. An empty result means the world is up
// to date and no node is written.
//
// Comparing with the world's current value, rather than re-writing every
// intent each tick as the reference does, keeps an idle room's history
// from growing by one node per tick forever, and makes a tick that moves
// to a new leader write nothing the old one already wrote. Deleting an
// intent leaves its world key as it was: intents are inputs, world is the
// state they produced (the reference does the same).
func Plan(m *Materializer, prefix string) []*syncv1.Op {
	if prefix == "" {
		prefix = DefaultIntentPrefix
	}
	var ops []*syncv1.Op
	for _, e := range m.Prefix(prefix) {
		w, ok := WorldPath(e.Path)
		if !ok {
			continue
		}
		if cur, ok := m.Get(w); ok && cur.Equal(e.Value) {
			continue
		}
		ops = append(ops, setOp(w, e.Value))
	}
	return ops
}

// setOp writes v at path, keeping a blob a blob (with its media type).
func setOp(path string, v Value) *syncv1.Op {
	if v.Blob {
		return &syncv1.Op{Path: path, Kind: &syncv1.Op_SetBlob{SetBlob: &syncv1.SetBlob{Data: v.Data, MediaType: v.MediaType}}}
	}
	return &syncv1.Op{Path: path, Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: v.Data}}}
}
