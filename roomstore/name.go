package roomstore

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/nodalmerge/nodalmerge-go/roomname"
)

// MaxRoomNameBytes bounds a room name (roomname.MaxBytes).
const MaxRoomNameBytes = roomname.MaxBytes

// validRoomName is the one room-name rule (package roomname). The store
// checks it again rather than trusting its caller because the name is
// written into every log entry with a one-byte length.
func validRoomName(name string) bool { return roomname.Valid(name) }

// roomFileName names a room's file by the SHA-256 of the room name. Valid
// names may hold characters some file systems refuse (':', '*') and escaping
// them could pass the 255-byte name limit; a hash is always 64 safe
// characters. The file's header holds the name itself, so a file can be
// identified without the hash and a mix-up is detected on load.
func roomFileName(room string) string {
	sum := sha256.Sum256([]byte(room))
	return hex.EncodeToString(sum[:]) + roomFileExt
}

const roomFileExt = ".room"
