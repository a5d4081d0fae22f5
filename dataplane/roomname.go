package dataplane

// MaxRoomNameBytes bounds a room name.
const MaxRoomNameBytes = 128

// roomNameHelp is the body of the 400 answer to a bad room name.
const roomNameHelp = "invalid room name: must be 1 to 128 characters from A-Z a-z 0-9 and . _ ~ : @ ! $ & ' ( ) * + , ; = -"

// validRoomName reports whether name is 1–128 bytes of RFC 3986 unreserved
// and sub-delim characters plus ':' and '@' (what a path segment may hold
// unescaped), so room names are safe in URLs, logs and metric labels, and
// never contain '/'.
func validRoomName(name string) bool {
	if len(name) == 0 || len(name) > MaxRoomNameBytes {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !roomNameByte(name[i]) {
			return false
		}
	}
	return true
}

func roomNameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '.', '_', '~', ':', '@', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', '-':
		return true
	}
	return false
}
