package dataplane

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

// Close codes and reasons (SPEC section 2).
const (
	closeNormal        = 1000
	closeGoingAway     = 1001
	closePolicy        = 1008
	closeTooBig        = 1009
	closeOverload      = 1011
	closeResync        = 4001
	closeTokenExpired  = 4002
	closeRateLimit     = 4008
	reasonGoingAway    = "going away"
	reasonTooBig       = "message too big"
	reasonResync       = "resync required"
	reasonHandshake    = "handshake timeout"
	reasonOverload     = "server overload"
	reasonRateLimit    = "rate limit exceeded"
	reasonEvicted      = "evicted"
	maxCloseReasonSize = 123 // 125-byte control payload minus the code
)

// catchUpChunkBytes bounds the node bytes in one catch-up or request answer,
// so that each pack frame stays well under the usual 1 MiB frame limit of
// clients (base64 adds a third).
const catchUpChunkBytes = 256 << 10

// outFrame is one item of a session's queue: a text frame (data), a
// catch-up (encoded by the writer, after data if both are set), or, when
// neither is set, a close to send after everything queued before it.
// Frames are shared between every session a broadcast goes to and must
// not be modified.
type outFrame struct {
	data      []byte
	catchUp   *catchUp
	closeCode int
	closeText string
}

// catchUp is a history answer (join or request) waiting for the writer:
// the nodes are captured under the room lock, in the session's queue
// order, and encoded into bounded pack frames by the writer goroutine, so
// a long history costs the room lock only a slice of pointers.
type catchUp struct {
	from, root string
	nodes      []*syncv1.Node
	sub        *subscription
}

// encode marshals an outgoing message once; the result can be queued to any
// number of sessions.
func encode(m any) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("dataplane: encode %T: %w", m, err)
	}
	return b, nil
}

// chunks calls emit with consecutive runs of nodes holding at most
// catchUpChunkBytes of node data each (a single larger node gets a run of
// its own), keeping their order. It stops at the first error.
func chunks(nodes []*syncv1.Node, emit func([]*syncv1.Node) error) error {
	start, size := 0, 0
	for i, n := range nodes {
		sz := len(n.GetTransactionBytes()) + len(n.GetSignature())
		if size > 0 && size+sz > catchUpChunkBytes {
			if err := emit(nodes[start:i]); err != nil {
				return err
			}
			start, size = i, 0
		}
		size += sz
	}
	if start < len(nodes) {
		return emit(nodes[start:])
	}
	return nil
}

// closeReason truncates a close reason to what fits a close frame, on a
// UTF-8 boundary.
func closeReason(s string) string {
	if len(s) <= maxCloseReasonSize {
		return s
	}
	s = s[:maxCloseReasonSize]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
