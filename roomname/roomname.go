// Package roomname is the one rule for room names, shared by the data plane
// (the /ws/{room} path), the control plane (room-scoped commands) and the
// replicated state (the FSM refuses a command naming an invalid room).
package roomname

// MaxBytes bounds a room name.
const MaxBytes = 128

// Help explains the rule; it is the body of the data plane's 400 answer and
// the text of the control plane's InvalidArgument.
const Help = "invalid room name: must be 1 to 128 characters from A-Z a-z 0-9 and . _ ~ : @ ! $ & ' ( ) * + , ; = -"

// Valid reports whether name is 1–128 bytes of RFC 3986 unreserved and
// sub-delim characters plus ':' and '@' (what a path segment may hold
// unescaped), so room names are safe in URLs, logs, file names of hashed
// stores and metric labels, and never contain '/'.
func Valid(name string) bool {
	if len(name) == 0 || len(name) > MaxBytes {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !validByte(name[i]) {
			return false
		}
	}
	return true
}

func validByte(c byte) bool {
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
