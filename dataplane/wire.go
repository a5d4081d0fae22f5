package dataplane

import (
	"encoding/base64"
	"strconv"
	"sync"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// The two frames of the ingest hot path, a relayed pack and a pack-ack,
// are built here by appending, not by encoding/json: json.Marshal of a
// type with a MarshalJSON method reflects over it, then validates and
// compacts the method's output again, and at thousands of packs a second
// that was a visible share of the committer. The bytes are exactly what
// encode(protocol.Pack{...}) / encode(protocol.PackAck{...}) produce (a
// test compares them); anything outside the fast path's assumptions
// (strings that JSON would escape, rejections to list) goes through
// encode.

// newScratchPool returns the pool of Server.scratch: it holds the
// protobuf encoding of a pack between marshalling and base64, so a relay
// allocates only its frame.
func newScratchPool() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}
}

// encodePack encodes nodes as one pack frame: {"type":"pack","from":...,
// "nodes":<base64 of a syncv1.Pack>,"root":...}.
func (s *Server) encodePack(from, root string, nodes []*syncv1.Node) ([]byte, error) {
	if !jsonPlain(from) || !jsonPlain(root) {
		return encodePackJSON(from, root, nodes)
	}
	bp := s.scratch.Get().(*[]byte)
	defer s.scratch.Put(bp)
	raw, err := proto.MarshalOptions{}.MarshalAppend((*bp)[:0], &syncv1.Pack{Nodes: nodes})
	if err != nil {
		return nil, err
	}
	if cap(raw) <= 1<<20 {
		*bp = raw[:0] // keep a grown buffer, but not a huge one
	}
	n := len(`{"type":"pack","nodes":""}`) + base64.StdEncoding.EncodedLen(len(raw))
	if from != "" {
		n += len(`,"from":""`) + len(from)
	}
	if root != "" {
		n += len(`,"root":""`) + len(root)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":"pack"`...)
	if from != "" {
		b = append(b, `,"from":"`...)
		b = append(b, from...)
		b = append(b, '"')
	}
	b = append(b, `,"nodes":"`...)
	b = base64.StdEncoding.AppendEncode(b, raw)
	b = append(b, '"')
	if root != "" {
		b = append(b, `,"root":"`...)
		b = append(b, root...)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// encodePackJSON is encodePack through encoding/json.
func encodePackJSON(from, root string, nodes []*syncv1.Node) ([]byte, error) {
	raw, err := proto.Marshal(&syncv1.Pack{Nodes: nodes})
	if err != nil {
		return nil, err
	}
	return encode(protocol.Pack{From: from, Nodes: base64.StdEncoding.EncodeToString(raw), Root: root})
}

// encodeAck encodes a pack-ack.
func encodeAck(ack protocol.PackAck) ([]byte, error) {
	if len(ack.Rejections) > 0 {
		return encode(ack)
	}
	b := make([]byte, 0, 96)
	b = append(b, `{"type":"pack-ack","accepted":`...)
	b = strconv.AppendInt(b, int64(ack.Accepted), 10)
	b = append(b, `,"rejected":`...)
	b = strconv.AppendInt(b, int64(ack.Rejected), 10)
	b = append(b, `,"incoming":`...)
	b = strconv.AppendInt(b, int64(ack.Incoming), 10)
	return append(b, `,"rejections":[]}`...), nil
}

// jsonPlain reports whether encoding/json writes s between quotes
// unchanged: printable ASCII other than the quote, the backslash and the
// HTML characters it escapes. Hex keys and roots always are.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
