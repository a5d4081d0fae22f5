package history

import (
	"errors"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

// ErrMissingParent is returned by Store.Put when a node's parent is neither
// stored nor earlier in the same batch: the store only ever holds complete
// ancestries, which is what makes its frontier meaningful.
var ErrMissingParent = errors.New("history: parent not stored")

// Store is one room's DAG of nodes. Implementations must be safe for
// concurrent use; the data plane serialises Put with the Resolve that
// produced its input, but reads (Has from Prepare, Missing for catch-up)
// may run alongside.
//
// The in-memory MemStore is the only one today; a durable store comes with
// --store, behind this same interface.
type Store interface {
	Has(ID) bool
	Get(ID) (*syncv1.Node, bool)
	// Put stores nodes given parents first (as Validator.Resolve orders
	// them). Already stored ids are skipped. It fails without storing
	// anything if a parent is missing.
	Put(nodes []Accepted) error
	// Frontier returns the stored nodes that no stored node names as a
	// parent, sorted bytewise.
	Frontier() []ID
	MaxLamport() uint64
	Len() int
	// Missing returns every stored node that is neither in known nor an
	// ancestor of a node in known, parents before children. Ids in known
	// that are not stored are ignored.
	Missing(known []ID) []*syncv1.Node
}
