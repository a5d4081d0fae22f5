package roomstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// crashed is a store directory as kill -9 left it: every batch was
// acknowledged, nothing was checkpointed, so the log holds all of them.
type crashed struct {
	dir     string
	batches [][]history.Accepted // room "room", one Put (one log frame) each
	other   []history.Accepted   // room "other"
}

func makeCrashed(t *testing.T) crashed {
	t.Helper()
	live := t.TempDir()
	s := openStore(t, live, Options{CheckpointBytes: 1 << 30})
	key := newKey(t)
	r := openRoom(t, s, "room")
	o := openRoom(t, s, "other")
	var c crashed
	nodes := chain(t, key, 12)
	for i := 0; i < len(nodes); i += 3 {
		mustPut(t, r, nodes[i:i+3]...)
		c.batches = append(c.batches, nodes[i:i+3])
	}
	c.other = chain(t, key, 2)
	mustPut(t, o, c.other...)
	// The last frame of the log is the last batch of "room".
	last := chain(t, key, 2, nodes[len(nodes)-1].ID)
	mustPut(t, r, last...)
	c.batches = append(c.batches, last)
	c.dir = crashCopy(t, live)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c crashed) roomIDs(upTo int) []history.ID {
	var out []history.ID
	for _, b := range c.batches[:upTo] {
		out = append(out, ids(b)...)
	}
	return out
}

func (c crashed) walPath() string { return filepath.Join(c.dir, walFileName) }

// lastFrameStart returns the offset of the log's last frame.
func lastFrameStart(t *testing.T, wal []byte) int {
	t.Helper()
	off, last := 0, -1
	for off < len(wal) {
		_, n, err := readFrame(wal[off:])
		if err != nil {
			t.Fatalf("log unreadable at %d: %v", off, err)
		}
		last = off
		off += n
	}
	return last
}

func TestRecoverReplaysLog(t *testing.T) {
	for _, lose := range []bool{false, true} {
		t.Run(fmt.Sprintf("room files lost=%v", lose), func(t *testing.T) {
			c := makeCrashed(t)
			if lose {
				// Never fsynced, so a power loss may take them entirely.
				if err := os.RemoveAll(filepath.Join(c.dir, roomsDirName)); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(filepath.Join(c.dir, roomsDirName), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			s := openStore(t, c.dir, Options{})
			defer s.Close()
			if n := fileSize(t, c.walPath()); n != 0 {
				t.Fatalf("log is %d bytes after recovery, want 0", n)
			}
			checkHistory(t, openRoom(t, s, "room"), c.roomIDs(len(c.batches)))
			checkHistory(t, openRoom(t, s, "other"), ids(c.other))
		})
	}
}

// TestRecoverTornLogTail cuts the log inside its last frame, as a process
// killed while writing it would: the earlier batches all survive.
func TestRecoverTornLogTail(t *testing.T) {
	c := makeCrashed(t)
	wal, err := os.ReadFile(c.walPath())
	if err != nil {
		t.Fatal(err)
	}
	start := lastFrameStart(t, wal)
	for _, cut := range []int{start + 1, start + frameHeaderSize - 1, start + frameHeaderSize, start + frameHeaderSize + 7, len(wal) - 1} {
		t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
			dir := crashCopy(t, c.dir)
			if err := os.Truncate(filepath.Join(dir, walFileName), int64(cut)); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, dir, Options{})
			defer s.Close()
			// The room file held the last batch too, written after the
			// fsync; recovery rewrote it from the log, without that batch.
			checkHistory(t, openRoom(t, s, "room"), c.roomIDs(len(c.batches)-1))
			checkHistory(t, openRoom(t, s, "other"), ids(c.other))
		})
	}
	t.Run("last frame garbled", func(t *testing.T) {
		dir := crashCopy(t, c.dir)
		garbled := bytes.Clone(wal)
		garbled[len(garbled)-3] ^= 0xff
		if err := os.WriteFile(filepath.Join(dir, walFileName), garbled, 0o600); err != nil {
			t.Fatal(err)
		}
		s := openStore(t, dir, Options{})
		defer s.Close()
		checkHistory(t, openRoom(t, s, "room"), c.roomIDs(len(c.batches)-1))
	})
	t.Run("zero-filled tail", func(t *testing.T) {
		dir := crashCopy(t, c.dir)
		padded := append(bytes.Clone(wal), make([]byte, 4096)...)
		if err := os.WriteFile(filepath.Join(dir, walFileName), padded, 0o600); err != nil {
			t.Fatal(err)
		}
		s := openStore(t, dir, Options{})
		defer s.Close()
		checkHistory(t, openRoom(t, s, "room"), c.roomIDs(len(c.batches)))
	})
}

// TestRecoverCorruptLogMiddle: damage before the last frame is an error
// naming the file and offset, never a silent skip.
func TestRecoverCorruptLogMiddle(t *testing.T) {
	c := makeCrashed(t)
	wal, err := os.ReadFile(c.walPath())
	if err != nil {
		t.Fatal(err)
	}
	_, first, err := readFrame(wal)
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func([]byte){
		"body byte":   func(b []byte) { b[first+frameHeaderSize+5] ^= 0x01 },
		"huge length": func(b []byte) { binary.LittleEndian.PutUint32(b[first:], 0xfffffff0) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := crashCopy(t, c.dir)
			bad := bytes.Clone(wal)
			mutate(bad)
			path := filepath.Join(dir, walFileName)
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, Options{})
			want := fmt.Sprintf("%s: corrupt batch at offset %d", path, first)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Open: err = %v, want it to contain %q", err, want)
			}
			// The log was left alone for an operator to inspect.
			if got, _ := os.ReadFile(path); !bytes.Equal(got, bad) {
				t.Fatal("a failed recovery modified the log")
			}
		})
	}
}

// TestRecoverOverGarbageRoomTail: whatever a crash left after the last
// checkpointed byte of a room file is replaced by the log's copy.
func TestRecoverOverGarbageRoomTail(t *testing.T) {
	c := makeCrashed(t)
	path := roomPath(c.dir, "room")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data[:len(data)-10], bytes.Repeat([]byte{0xA5}, 300)...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, c.dir, Options{})
	defer s.Close()
	checkHistory(t, openRoom(t, s, "room"), c.roomIDs(len(c.batches)))
}

// TestRecoverMissingCheckpointedData: a room file shorter than where the
// log continues it lost durable data; recovery says so instead of
// writing a file with a hole.
func TestRecoverMissingCheckpointedData(t *testing.T) {
	live := t.TempDir()
	s := openStore(t, live, Options{})
	r := openRoom(t, s, "room")
	nodes := chain(t, newKey(t), 6)
	mustPut(t, r, nodes[:3]...)
	if err := s.Close(); err != nil { // checkpoint
		t.Fatal(err)
	}
	s = openStore(t, live, Options{CheckpointBytes: 1 << 30})
	mustPut(t, openRoom(t, s, "room"), nodes[3:]...)
	dir := crashCopy(t, live)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := roomPath(dir, "room")
	if err := os.Truncate(path, roomHeaderSize("room")); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "checkpointed data is missing") {
		t.Fatalf("Open: err = %v, want missing checkpointed data in %s", err, path)
	}
}

// cleanRoom writes n chained nodes to room "room" and closes the store, so
// the room file alone holds them.
func cleanRoom(t *testing.T, n int) (string, []history.Accepted) {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	nodes := chain(t, newKey(t), n)
	for _, a := range nodes {
		mustPut(t, openRoom(t, s, "room"), a)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, nodes
}

func TestLoadCutsTornRoomTail(t *testing.T) {
	dir, nodes := cleanRoom(t, 5)
	path := roomPath(dir, "room")
	size := fileSize(t, path)
	if err := os.Truncate(path, size-3); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, Options{})
	r := openRoom(t, s, "room")
	checkHistory(t, r, ids(nodes[:4]))
	// New records go after the cut, not after the torn bytes.
	more := mkNode(t, newKey(t), 9, nodes[3].ID)
	mustPut(t, r, more)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{})
	defer s.Close()
	checkHistory(t, openRoom(t, s, "room"), append(ids(nodes[:4]), more.ID))
}

func TestLoadCorruptRoomMiddle(t *testing.T) {
	dir, _ := cleanRoom(t, 5)
	path := roomPath(dir, "room")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first := roomHeaderSize("room")
	data[first+frameHeaderSize+2] ^= 0x40
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, Options{})
	defer s.Close()
	_, err = s.Open("room")
	want := fmt.Sprintf("%s: offset %d: checksum mismatch", path, first)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open room: err = %v, want it to contain %q", err, want)
	}
	// A failed load is not cached: the next Open tries again.
	if _, err := s.Open("room"); err == nil {
		t.Fatal("second Open of a corrupt room succeeded")
	}
}

func TestLoadRefusesAnotherRoomsFile(t *testing.T) {
	dir, _ := cleanRoom(t, 2)
	data, err := os.ReadFile(roomPath(dir, "room"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(roomPath(dir, "impostor"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, Options{})
	defer s.Close()
	if _, err := s.Open("impostor"); err == nil || !strings.Contains(err.Error(), `holds room "room"`) {
		t.Fatalf("Open of a room whose file holds another room: err = %v", err)
	}
}
