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

// DecodePack decodes pack.nodes: standard base64 of a syncv1.Pack. A pack
// with more than maxNodes nodes is refused before any node is allocated
// (maxNodes <= 0 means no limit), so a small frame cannot expand into a
// large number of objects.
func DecodePack(b64 string, maxNodes int) (*syncv1.Pack, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: nodes is not standard base64: %v", ErrInvalidPack, err)
	}
	if maxNodes > 0 {
		n, err := countNodes(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: nodes is not a protobuf Pack: %v", ErrInvalidPack, err)
		}
		if n > maxNodes {
			return nil, fmt.Errorf("%w: %d nodes, at most %d allowed", ErrInvalidPack, n, maxNodes)
		}
	}
	var p syncv1.Pack
	if err := proto.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("%w: nodes is not a protobuf Pack: %v", ErrInvalidPack, err)
	}
	// Per-node problems (empty or undecodable transaction bytes, bad
	// signatures) are not decided here: the Validator rejects such a node
	// alone and lets the rest of the pack land.
	return &p, nil
}

// countNodes walks the top level of an encoded Pack and counts the nodes
// field without decoding them.
func countNodes(b []byte) (int, error) {
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
		if num == packNodesField {
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
