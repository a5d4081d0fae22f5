package roomstore

import (
	"bytes"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// FuzzDecodeRoomFile feeds arbitrary bytes to the room file decoder (header
// frame, then node record frames), as a damaged disk could.
func FuzzDecodeRoomFile(f *testing.F) {
	key := newKey(f)
	nodes := chain(f, key, 3)
	file := roomHeader("room")
	for _, a := range nodes {
		var err error
		if file, err = appendNodeRecord(file, a); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(file)
	f.Add(file[:len(file)-5])
	f.Add(roomHeader("x"))
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add([]byte("NMROOM01 not framed"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, off, err := decodeRoomHeader(data)
		if err != nil {
			return
		}
		if off > len(data) {
			t.Fatalf("header size %d past %d bytes", off, len(data))
		}
		got, valid, err := decodeRecords(data, off)
		if err != nil {
			return
		}
		if valid < off || valid > len(data) {
			t.Fatalf("valid end %d outside [%d, %d]", valid, off, len(data))
		}
		for _, a := range got {
			if a.Node == nil || a.ID != history.NodeID(a.Node) {
				t.Fatal("decoded record with a wrong id")
			}
		}
	})
}

// FuzzDecodeWALBatch feeds arbitrary batch bodies to the log decoder. The
// format has no slack, so whatever decodes must re-encode to the input.
func FuzzDecodeWALBatch(f *testing.F) {
	body := []byte{walVersion}
	body = appendWALEntry(body, walEntry{room: "room", offset: 21, data: []byte("records")})
	body = appendWALEntry(body, walEntry{room: "b:c", offset: 1 << 40, data: nil})
	f.Add(body)
	f.Add(body[:len(body)-3])
	f.Add([]byte{walVersion})
	f.Add([]byte{2, 4, 'r', 'o', 'o', 'm'})
	f.Add([]byte{walVersion, 200})
	f.Fuzz(func(t *testing.T, body []byte) {
		entries, err := decodeWALBatch(body)
		if err != nil {
			return
		}
		re := []byte{walVersion}
		for _, e := range entries {
			if !validRoomName(e.room) || e.offset < 0 {
				t.Fatalf("decoded entry with room %q offset %d", e.room, e.offset)
			}
			re = appendWALEntry(re, e)
		}
		if !bytes.Equal(re, body) {
			t.Fatal("decoded batch does not re-encode to its input")
		}
	})
}

// FuzzReadFrame checks the frame reader's contract on arbitrary input: a
// frame, a torn tail, or an error, and never a body past the input.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, []byte("hello")))
	f.Add(appendFrame(nil, nil))
	f.Add([]byte{5, 0, 0, 0, 1, 2, 3, 4, 'h'})
	f.Add(make([]byte, 12))
	f.Fuzz(func(t *testing.T, data []byte) {
		body, n, err := readFrame(data)
		switch {
		case err != nil:
			if body != nil || n != 0 {
				t.Fatal("error with a body")
			}
		default:
			if n != frameHeaderSize+len(body) || n > len(data) {
				t.Fatalf("frame size %d, body %d, input %d", n, len(body), len(data))
			}
			if !bytes.Equal(appendFrame(nil, body), data[:n]) {
				t.Fatal("frame does not re-encode to its input")
			}
		}
	})
}
