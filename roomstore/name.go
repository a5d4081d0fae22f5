package roomstore

import (
	"crypto/sha256"
	"encoding/hex"
)

// MaxRoomNameBytes bounds a room name, as the data plane does.
const MaxRoomNameBytes = 128

// validRoomName repeats the data plane's rule (dataplane/roomname.go): 1 to
// 128 bytes of RFC 3986 unreserved and sub-delim characters plus ':' and
// '@'. The store checks it again rather than trusting its caller because
// the name is written into every log entry with a one-byte length.
func validRoomName(name string) bool {
	if len(name) == 0 || len(name) > MaxRoomNameBytes {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			continue
		}
		switch c {
		case '.', '_', '~', ':', '@', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', '-':
			continue
		}
		return false
	}
	return true
}

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
