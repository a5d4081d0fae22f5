package dataplane

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// Close codes and reasons (SPEC section 2).
const (
	closeNormal        = 1000
	closeGoingAway     = 1001
	closePolicy        = 1008
	closeTooBig        = 1009
	closeResync        = 4001
	reasonGoingAway    = "going away"
	reasonTooBig       = "message too big"
	reasonResync       = "resync required"
	reasonHandshake    = "handshake timeout"
	maxCloseReasonSize = 123 // 125-byte control payload minus the code
)

// catchUpChunkBytes bounds the node bytes in one catch-up or request answer,
// so that each pack frame stays well under the usual 1 MiB frame limit of
// clients (base64 adds a third).
const catchUpChunkBytes = 256 << 10

// outFrame is one item of a session's queue: a text frame (data), a run of
// text frames that must take one queue slot (batch: a welcome with its
// catch-up, or a request's answer, however long the history), or, when
// both are nil, a close to send after everything queued before it. Frames
// are shared between every session a broadcast goes to and must not be
// modified.
type outFrame struct {
	data      []byte
	batch     [][]byte
	closeCode int
	closeText string
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

// encodePacks encodes nodes as one or more pack frames of at most
// catchUpChunkBytes of node data each (a single larger node gets a frame of
// its own), keeping their order.
func encodePacks(from, root string, nodes []*syncv1.Node) ([][]byte, error) {
	var frames [][]byte
	start, size := 0, 0
	flush := func(end int) error {
		if end == start {
			return nil
		}
		s, err := history.EncodePack(nodes[start:end])
		if err != nil {
			return err
		}
		b, err := encode(protocol.Pack{From: from, Nodes: s, Root: root})
		if err != nil {
			return err
		}
		frames = append(frames, b)
		start, size = end, 0
		return nil
	}
	for i, n := range nodes {
		sz := len(n.GetTransactionBytes()) + len(n.GetSignature())
		if size > 0 && size+sz > catchUpChunkBytes {
			if err := flush(i); err != nil {
				return nil, err
			}
		}
		size += sz
	}
	if err := flush(len(nodes)); err != nil {
		return nil, err
	}
	return frames, nil
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
