package dataplane

import "github.com/nodalmerge/nodalmerge-go/roomname"

// MaxRoomNameBytes bounds a room name (the one rule lives in roomname).
const MaxRoomNameBytes = roomname.MaxBytes

// roomNameHelp is the body of the 400 answer to a bad room name.
const roomNameHelp = roomname.Help

// validRoomName is roomname.Valid: names are safe unescaped in URLs, logs,
// metric labels and store file names, and never contain '/'.
func validRoomName(name string) bool { return roomname.Valid(name) }
