package roomstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// loadRoom reads a room file into a fresh MemStore. A missing file is an
// empty room. A torn tail (possible only if the file was written outside
// the log's protection, since recovery rewrites every tail the log covers)
// is cut off with a warning; any other damage is an error naming the file
// and offset, because acknowledged nodes may lie beyond it.
func loadRoom(log *slog.Logger, path, name string) (*history.MemStore, error) {
	mem := history.NewMemStore()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return mem, nil
	}
	if err != nil {
		return nil, fmt.Errorf("roomstore: read room file: %w", err)
	}
	if len(data) == 0 {
		return mem, nil
	}
	got, off, err := decodeRoomHeader(data)
	if errors.Is(err, errTorn) {
		// The header is written together with the room's first log entry;
		// without that entry nothing was ever acknowledged.
		log.Warn("roomstore: room file has a torn header and no records; starting empty", "file", path, "room", name)
		if err := os.Truncate(path, 0); err != nil {
			return nil, fmt.Errorf("roomstore: truncate %s: %w", path, err)
		}
		return mem, nil
	}
	if err != nil {
		return nil, fmt.Errorf("roomstore: %s: offset 0: %w", path, err)
	}
	if got != name {
		return nil, fmt.Errorf("roomstore: %s holds room %q, not %q", path, got, name)
	}
	nodes, valid, err := decodeRecords(data, off)
	if err != nil {
		return nil, fmt.Errorf("roomstore: %s: %w", path, err)
	}
	if valid < len(data) {
		log.Warn("roomstore: cutting torn tail of room file", "file", path, "room", name, "offset", valid, "bytes", len(data)-valid)
		if err := os.Truncate(path, int64(valid)); err != nil {
			return nil, fmt.Errorf("roomstore: truncate %s: %w", path, err)
		}
	}
	if err := mem.Put(nodes); err != nil {
		return nil, fmt.Errorf("roomstore: %s: %w", path, err)
	}
	return mem, nil
}

// decodeRecords decodes the node records of a room file from off on. It
// returns them and where the valid data ends: len(data), or the start of a
// torn tail.
func decodeRecords(data []byte, off int) ([]history.Accepted, int, error) {
	var nodes []history.Accepted
	for off < len(data) {
		body, n, err := readFrame(data[off:])
		if errors.Is(err, errTorn) {
			return nodes, off, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("offset %d: %w", off, err)
		}
		a, err := decodeNodeRecord(body)
		if err != nil {
			return nil, 0, fmt.Errorf("offset %d: %w", off, err)
		}
		nodes = append(nodes, a)
		off += n
	}
	return nodes, off, nil
}
