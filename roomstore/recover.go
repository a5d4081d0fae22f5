package roomstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// recoverWAL replays the write-ahead log into the room files, makes them
// durable and empties the log, so that afterwards every room file is
// complete on its own. It runs in Open, before anything else touches the
// files.
//
// A torn batch at the end of the log (the process died writing it, so no
// Put in it returned) is dropped. Damage anywhere else is an error naming
// the file and offset: acknowledged batches follow it.
func recoverWAL(log *slog.Logger, walPath, roomsDir string, wal *os.File) error {
	data, err := os.ReadFile(walPath)
	if err != nil {
		return fmt.Errorf("roomstore: read %s: %w", walPath, err)
	}
	byRoom := make(map[string][]walEntry)
	var order []string // rooms in first-seen order, for deterministic replay
	batches, off := 0, 0
	for off < len(data) {
		body, n, err := readFrame(data[off:])
		if errors.Is(err, errTorn) {
			log.Warn("roomstore: dropping torn tail of the write-ahead log (never acknowledged)",
				"file", walPath, "offset", off, "bytes", len(data)-off)
			break
		}
		if err != nil {
			return fmt.Errorf("roomstore: %s: corrupt batch at offset %d: %w", walPath, off, err)
		}
		entries, err := decodeWALBatch(body)
		if err != nil {
			return fmt.Errorf("roomstore: %s: corrupt batch at offset %d: %w", walPath, off, err)
		}
		for _, e := range entries {
			if _, ok := byRoom[e.room]; !ok {
				order = append(order, e.room)
			}
			byRoom[e.room] = append(byRoom[e.room], e)
		}
		batches++
		off += n
	}
	if len(data) == 0 {
		return nil
	}
	for _, room := range order {
		if err := replayRoom(roomsDir, room, byRoom[room]); err != nil {
			return err
		}
	}
	if len(order) > 0 {
		if err := syncDir(roomsDir); err != nil {
			return err
		}
	}
	if err := wal.Truncate(0); err != nil {
		return fmt.Errorf("roomstore: truncate %s: %w", walPath, err)
	}
	if err := wal.Sync(); err != nil {
		return fmt.Errorf("roomstore: fsync %s: %w", walPath, err)
	}
	log.Info("roomstore: replayed write-ahead log", "batches", batches, "rooms", len(order))
	return nil
}

// replayRoom writes a room's log entries back into its file. Everything
// before the first entry was made durable by an earlier checkpoint; from
// there on the file may hold any prefix of the entries, or garbage, so it
// is cut there and rewritten.
func replayRoom(roomsDir, room string, entries []walEntry) error {
	path := filepath.Join(roomsDir, roomFileName(room))
	start := entries[0].offset
	for i := 1; i < len(entries); i++ {
		prev := entries[i-1]
		if entries[i].offset != prev.offset+int64(len(prev.data)) {
			return fmt.Errorf("roomstore: write-ahead log entries of room %q are not contiguous at room file offset %d", room, entries[i].offset)
		}
	}
	hs := roomHeaderSize(room)
	if start < hs {
		return fmt.Errorf("roomstore: write-ahead log entry of room %q at offset %d overlaps the header", room, start)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("roomstore: open room file: %w", err)
	}
	defer func() { _ = f.Close() }()
	if start == hs {
		// The room's first records are in the log, so its header may never
		// have reached the disk. It is deterministic: write it again.
		if _, err := f.WriteAt(roomHeader(room), 0); err != nil {
			return fmt.Errorf("roomstore: write header of %s: %w", path, err)
		}
	} else if err := checkDurablePrefix(f, path, room, start); err != nil {
		return err
	}
	if err := f.Truncate(start); err != nil {
		return fmt.Errorf("roomstore: truncate %s: %w", path, err)
	}
	for _, e := range entries {
		if _, err := f.WriteAt(e.data, e.offset); err != nil {
			return fmt.Errorf("roomstore: write %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("roomstore: fsync %s: %w", path, err)
	}
	return nil
}

// checkDurablePrefix checks that a room file reaches the offset where the
// log continues it and belongs to the room: if not, checkpointed data was
// lost or the file was replaced, and replaying would hide that.
func checkDurablePrefix(f *os.File, path, room string, start int64) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("roomstore: stat %s: %w", path, err)
	}
	if st.Size() < start {
		return fmt.Errorf("roomstore: %s is %d bytes but the write-ahead log continues it at offset %d: checkpointed data is missing", path, st.Size(), start)
	}
	head := make([]byte, roomHeaderSize(room))
	if _, err := f.ReadAt(head, 0); err != nil {
		return fmt.Errorf("roomstore: read header of %s: %w", path, err)
	}
	got, _, err := decodeRoomHeader(head)
	if err != nil {
		return fmt.Errorf("roomstore: %s: offset 0: %w", path, err)
	}
	if got != room {
		return fmt.Errorf("roomstore: %s holds room %q, not %q", path, got, room)
	}
	return nil
}
