package history

import (
	"encoding/base64"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

// ErrInvalidPack is wrapped by every DecodePack error. Its text is the prefix
// the data plane sends back to the client ("invalid pack: ..."), so the rest
// of each message is written for the client too and never echoes input.
var ErrInvalidPack = errors.New("invalid pack")

// packNodesField is the field number of Pack.nodes.
const packNodesField protowire.Number = 1

// RawPack is pack.nodes after base64 decoding and a cheap scan of its top
// level: enough to charge a rate limit (node count, decoded bytes) before
// paying for the protobuf decode and the signature checks.
type RawPack struct {
	Bytes []byte // the encoded syncv1.Pack
	Nodes int    // number of nodes in it
}

// ScanPack decodes the base64 of pack.nodes and counts its nodes without
// decoding them. A pack with more than maxNodes nodes is refused (maxNodes
// <= 0 means no limit), so a small frame cannot expand into a large number
// of objects.
func ScanPack(b64 string, maxNodes int) (RawPack, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return RawPack{}, fmt.Errorf("%w: nodes is not standard base64: %v", ErrInvalidPack, err)
	}
	n, err := CountPackNodes(raw)
	if err != nil {
		return RawPack{}, fmt.Errorf("%w: nodes is not a protobuf Pack: %v", ErrInvalidPack, err)
	}
	if maxNodes > 0 && n > maxNodes {
		return RawPack{}, fmt.Errorf("%w: %d nodes, at most %d allowed", ErrInvalidPack, n, maxNodes)
	}
	return RawPack{Bytes: raw, Nodes: n}, nil
}

// Decode decodes the scanned pack. Per-node problems (empty or undecodable
// transaction bytes, bad signatures) are not decided here: the Validator
// rejects such a node alone and lets the rest of the pack land.
func (r RawPack) Decode() (*syncv1.Pack, error) {
	var p syncv1.Pack
	if err := proto.Unmarshal(r.Bytes, &p); err != nil {
		return nil, fmt.Errorf("%w: nodes is not a protobuf Pack: %v", ErrInvalidPack, err)
	}
	return &p, nil
}

// DecodePack is ScanPack followed by Decode.
func DecodePack(b64 string, maxNodes int) (*syncv1.Pack, error) {
	r, err := ScanPack(b64, maxNodes)
	if err != nil {
		return nil, err
	}
	return r.Decode()
}

// CountPackNodes walks the top level of an encoded Pack and counts the
// nodes field without decoding them, so a caller can refuse an oversized
// pack before paying for its decoding.
func CountPackNodes(b []byte) (int, error) {
	count := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0, protowire.ParseError(m)
		}
		b = b[m:]
		// A nodes field of another wire type is an unknown field to
		// proto.Unmarshal, not a node: count what Decode will decode.
		if num == packNodesField && typ == protowire.BytesType {
			count++
		}
	}
	return count, nil
}

// EncodePack encodes nodes as pack.nodes (standard base64 of a Pack).
func EncodePack(nodes []*syncv1.Node) (string, error) {
	b, err := proto.Marshal(&syncv1.Pack{Nodes: nodes})
	if err != nil {
		return "", fmt.Errorf("history: encode pack of %d nodes: %w", len(nodes), err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
