package roomstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// A room file starts with a header frame whose body is roomMagic followed
// by the room name; node record frames follow, parents before children.
var roomMagic = []byte("NMROOM01")

// roomHeader returns the framed header of room's file.
func roomHeader(room string) []byte {
	body := make([]byte, 0, len(roomMagic)+len(room))
	body = append(body, roomMagic...)
	body = append(body, room...)
	return appendFrame(nil, body)
}

// roomHeaderSize is the length of roomHeader(room).
func roomHeaderSize(room string) int64 {
	return int64(frameHeaderSize + len(roomMagic) + len(room))
}

// decodeRoomHeader reads the header frame at the start of a room file and
// returns the room name and the header's size.
func decodeRoomHeader(b []byte) (room string, size int, err error) {
	body, size, err := readFrame(b)
	if err != nil {
		return "", 0, fmt.Errorf("header: %w", err)
	}
	if !bytes.HasPrefix(body, roomMagic) {
		return "", 0, errors.New("header: not a room file (bad magic)")
	}
	return string(body[len(roomMagic):]), size, nil
}

// The write-ahead log is a sequence of batch frames, one per group commit.
// A batch body is a version byte followed by entries, one per Put:
//
//	u8 room name length | room name | u64 offset in the room file | u32 length | room file bytes
//
// The room file bytes are exactly the node record frames appended to the
// room's file at that offset, so recovery replays an entry by writing it
// back where it belongs: no decoding, no deduplication, and replaying twice
// gives the same file.
const walVersion = 1

// maxRoomFileSize bounds offsets read from the log so that converting them
// to int64 cannot go negative. No real room comes near it.
const maxRoomFileSize = 1 << 50

// walEntry is one Put's share of a batch.
type walEntry struct {
	room   string
	offset int64
	data   []byte
}

// appendWALEntry appends e's encoding to a batch body.
func appendWALEntry(dst []byte, e walEntry) []byte {
	dst = append(dst, byte(len(e.room)))
	dst = append(dst, e.room...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.offset))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(e.data)))
	return append(dst, e.data...)
}

// decodeWALBatch decodes a batch body. The entries' data alias body.
func decodeWALBatch(body []byte) ([]walEntry, error) {
	if len(body) == 0 || body[0] != walVersion {
		return nil, errors.New("unknown batch version")
	}
	body = body[1:]
	var out []walEntry
	for len(body) > 0 {
		n := int(body[0])
		body = body[1:]
		if len(body) < n+12 {
			return nil, errors.New("entry header truncated")
		}
		room := string(body[:n])
		if !validRoomName(room) {
			return nil, errors.New("entry has an invalid room name")
		}
		body = body[n:]
		off := binary.LittleEndian.Uint64(body)
		dl := binary.LittleEndian.Uint32(body[8:])
		body = body[12:]
		if off > maxRoomFileSize {
			return nil, fmt.Errorf("entry offset %d out of range", off)
		}
		if uint64(dl) > uint64(len(body)) {
			return nil, errors.New("entry data truncated")
		}
		out = append(out, walEntry{room: room, offset: int64(off), data: body[:dl]})
		body = body[dl:]
	}
	return out, nil
}
