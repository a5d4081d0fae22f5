package roomstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// Every record on disk, in room files and in the write-ahead log, is a frame:
//
//	u32 length of body (little endian) | u32 CRC32C of body | body
//
// The length comes first so a reader can tell a frame that runs past the
// end of the file (a torn write) from one whose bytes are damaged.
const frameHeaderSize = 8

// maxFrameBody bounds one frame's body. A length above it cannot have been
// written by this package, so it is damage, not a large record; checking it
// keeps a garbage length from being taken at its word.
const maxFrameBody = 1 << 30

// castagnoli is CRC32C: hardware accelerated on amd64 and arm64, and better
// at catching burst errors than IEEE.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks the end of the valid part of a file: what follows was being
// written when the process died and was never acknowledged.
var errTorn = errors.New("torn write at end of file")

// appendFrame appends a frame holding body to dst.
func appendFrame(dst, body []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(body)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(body, castagnoli))
	return append(dst, body...)
}

// readFrame decodes the frame at the start of b and returns its body and
// total size. It returns errTorn when the frame cannot be complete because
// the data ends: fewer bytes than the header or the length says, the last
// frame's checksum failing, or nothing but zeros left (a file extended but
// not written). Any other damage is a plain error: acknowledged data follows
// it, so it must not be skipped.
func readFrame(b []byte) (body []byte, size int, err error) {
	if allZero(b) {
		return nil, 0, errTorn
	}
	if len(b) < frameHeaderSize {
		return nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if n > maxFrameBody {
		return nil, 0, fmt.Errorf("frame length %d over the %d limit", n, maxFrameBody)
	}
	size = frameHeaderSize + int(n)
	if size > len(b) {
		return nil, 0, errTorn
	}
	body = b[frameHeaderSize:size]
	if crc32.Checksum(body, castagnoli) != sum {
		if size == len(b) {
			return nil, 0, errTorn
		}
		return nil, 0, errors.New("checksum mismatch")
	}
	return body, size, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// A node record's body is what Store.Put needs back on reload without
// decoding the transaction again:
//
//	uvarint lamport | uvarint parent count | parent ids (32 bytes each) | Node protobuf
//
// The id is not stored: it is recomputed from the transaction bytes on load,
// which doubles as an end-to-end check of the record.

// appendNodeRecord appends the framed record of a to dst.
func appendNodeRecord(dst []byte, a history.Accepted) ([]byte, error) {
	nb, err := proto.Marshal(a.Node)
	if err != nil {
		return dst, fmt.Errorf("marshal node %s: %w", a.ID, err)
	}
	body := make([]byte, 0, 2*binary.MaxVarintLen64+len(a.Parents)*history.IDSize+len(nb))
	body = binary.AppendUvarint(body, a.Lamport)
	body = binary.AppendUvarint(body, uint64(len(a.Parents)))
	for _, p := range a.Parents {
		body = append(body, p[:]...)
	}
	body = append(body, nb...)
	return appendFrame(dst, body), nil
}

// decodeNodeRecord decodes a record body. The id is computed from the
// node's transaction bytes.
func decodeNodeRecord(body []byte) (history.Accepted, error) {
	var a history.Accepted
	lamport, k := binary.Uvarint(body)
	if k <= 0 {
		return a, errors.New("bad lamport varint")
	}
	body = body[k:]
	np, k := binary.Uvarint(body)
	if k <= 0 {
		return a, errors.New("bad parent count varint")
	}
	body = body[k:]
	if np > uint64(len(body)/history.IDSize) {
		return a, fmt.Errorf("%d parents do not fit in %d bytes", np, len(body))
	}
	parents := make([]history.ID, np)
	for i := range parents {
		copy(parents[i][:], body)
		body = body[history.IDSize:]
	}
	n := new(syncv1.Node)
	if err := proto.Unmarshal(body, n); err != nil {
		return a, fmt.Errorf("decode node: %w", err)
	}
	if len(n.GetTransactionBytes()) == 0 {
		return a, errors.New("node without transaction bytes")
	}
	return history.Accepted{Node: n, ID: history.NodeID(n), Lamport: lamport, Parents: parents}, nil
}
