package loadgen

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// A benchmark node's value starts with a header that lets a receiver find
// when it was sent. Nodes are signed before the timed window, so the value
// cannot hold the send time itself (it would change the node id and need a
// fresh signature at send time); it holds the publisher and the sequence
// number, and the publisher records the send time of each sequence number
// in a table the receivers read. Generator and receivers share one process
// and one monotonic clock, so the latency needs no clock synchronisation.
const (
	payloadMagic = "nmlg"
	// MinPayloadBytes is the smallest value size: magic, publisher, seq.
	MinPayloadBytes = len(payloadMagic) + 4 + 8
)

// fillPayload writes the header for (publisher, seq) into p (len(p) ≥
// MinPayloadBytes) and fills the rest with a fixed printable byte.
func fillPayload(p []byte, publisher uint32, seq uint64) {
	n := copy(p, payloadMagic)
	binary.BigEndian.PutUint32(p[n:], publisher)
	binary.BigEndian.PutUint64(p[n+4:], seq)
	for i := MinPayloadBytes; i < len(p); i++ {
		p[i] = 'x'
	}
}

// parsePayload reads a header written by fillPayload.
func parsePayload(p []byte) (publisher uint32, seq uint64, ok bool) {
	if len(p) < MinPayloadBytes || string(p[:len(payloadMagic)]) != payloadMagic {
		return 0, 0, false
	}
	n := len(payloadMagic)
	return binary.BigEndian.Uint32(p[n:]), binary.BigEndian.Uint64(p[n+4:]), true
}

// Field numbers of proto/nodalmerge/sync/v1 walked by decodeSamples
// (TestFieldNumbersMatchProto checks them against the generated code).
const (
	fieldPackNodes   protowire.Number = 1 // Pack.nodes
	fieldNodeTxBytes protowire.Number = 1 // Node.transaction_bytes
	fieldTxOps       protowire.Number = 5 // Transaction.ops
	fieldOpSet       protowire.Number = 2 // Op.set
	fieldMapSetValue protowire.Number = 1 // MapSet.value
)

const errNotPackFrameText = "not a pack frame"

var nodesKey = []byte(`"nodes":"`)

// sampleDecoder decodes pack frames fully (JSON field, base64, protobuf
// down to each op's value) with reused buffers. One per receiver.
type sampleDecoder struct {
	raw []byte
}

// decode calls fn for each benchmark payload in the pack frame and returns
// how many nodes the pack held. Frames come from the server, so nothing in
// them is trusted: any malformation is an error, never a panic.
func (d *sampleDecoder) decode(frame []byte, fn func(publisher uint32, seq uint64)) (int, error) {
	b64, err := packNodesField(frame)
	if err != nil {
		return 0, err
	}
	need := base64.StdEncoding.DecodedLen(len(b64))
	if cap(d.raw) < need {
		d.raw = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(d.raw[:need], b64)
	if err != nil {
		return 0, fmt.Errorf("pack nodes are not base64: %w", err)
	}
	nodes := 0
	err = eachField(d.raw[:n], fieldPackNodes, func(node []byte) error {
		nodes++
		return eachField(node, fieldNodeTxBytes, func(tx []byte) error {
			return eachField(tx, fieldTxOps, func(op []byte) error {
				return eachField(op, fieldOpSet, func(set []byte) error {
					return eachField(set, fieldMapSetValue, func(v []byte) error {
						if pub, seq, ok := parsePayload(v); ok {
							fn(pub, seq)
						}
						return nil
					})
				})
			})
		})
	})
	return nodes, err
}

// packNodesField returns the base64 text of a pack frame's "nodes". The
// server writes frames with encoding/json, whose output for a base64 string
// has no escapes, so a scan finds it without a JSON decode; anything
// unexpected falls back to a real decode.
func packNodesField(frame []byte) ([]byte, error) {
	if i := bytes.Index(frame, nodesKey); i >= 0 {
		rest := frame[i+len(nodesKey):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 && bytes.IndexByte(rest[:j], '\\') < 0 {
			return rest[:j], nil
		}
	}
	var p struct {
		Type  string  `json:"type"`
		Nodes *string `json:"nodes"`
	}
	if err := json.Unmarshal(frame, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", errNotPackFrameText, err)
	}
	if p.Type != "pack" || p.Nodes == nil {
		return nil, errors.New(errNotPackFrameText)
	}
	return []byte(*p.Nodes), nil
}

// eachField calls fn with the contents of every length-delimited field num
// of the message b, and checks that b is well-formed protobuf.
func eachField(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("bad protobuf: %w", protowire.ParseError(l))
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("bad protobuf: %w", protowire.ParseError(m))
			}
			if err := fn(v); err != nil {
				return err
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(n, typ, b)
		if m < 0 {
			return fmt.Errorf("bad protobuf: %w", protowire.ParseError(m))
		}
		b = b[m:]
	}
	return nil
}
