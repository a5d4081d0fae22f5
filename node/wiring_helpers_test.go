package node

import (
	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

func nodesOf(n ...*syncv1.Node) []*syncv1.Node { return n }

func decodeTx(b []byte) (*syncv1.Transaction, error) {
	tx := new(syncv1.Transaction)
	return tx, proto.Unmarshal(b, tx)
}
