package raftstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"
)

// logStoreKind selects the on-disk Raft log. raft-wal is the default (see
// DESIGN.md for the measurements); bolt stays selectable so the benchmark
// and the crash tests can compare both on the same code path.
type logStoreKind int

const (
	logStoreWAL logStoreKind = iota
	logStoreBolt
)

func (k logStoreKind) String() string {
	if k == logStoreBolt {
		return "bolt"
	}
	return "wal"
}

// diskStores is the opened on-disk log and stable store of one node and
// how to close them.
type diskStores struct {
	logs   raft.LogStore // behind the LogCache
	stable raft.StableStore
	close  func() error
}

// openDiskStores takes the directory lock and opens the log and stable
// stores under raftDir. The lock comes first: a second process on the same
// --store must fail at once with a clear error, not block on (or, worse,
// share) the files.
func openDiskStores(kind logStoreKind, raftDir string, hl *hclogAdapter) (_ *diskStores, err error) {
	unlock, err := lockDir(raftDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = unlock()
		}
	}()
	var ds *diskStores
	switch kind {
	case logStoreBolt:
		ds, err = openBolt(raftDir)
	default:
		ds, err = openWAL(raftDir, hl)
	}
	if err != nil {
		return nil, err
	}
	cache, err := raft.NewLogCache(logCacheSize, ds.logs)
	if err != nil {
		_ = ds.close()
		return nil, fmt.Errorf("raftstore: log cache: %w", err)
	}
	closeStores := ds.close
	ds.logs = cache
	ds.close = func() error { return errors.Join(closeStores(), unlock()) }
	return ds, nil
}

// openWAL opens raft-wal in <raftDir>/wal. raft-wal's Close does not close
// its meta database (a bolt file holding the segment list and the stable
// store), so this keeps its own handle to it and closes it after the WAL.
func openWAL(raftDir string, hl *hclogAdapter) (*diskStores, error) {
	dir := filepath.Join(raftDir, "wal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: create %s: %w", dir, err)
	}
	meta := &metadb.BoltMetaDB{}
	w, err := raftwal.Open(dir, raftwal.WithMetaStore(meta), raftwal.WithLogger(hl.Named("wal")))
	if err != nil {
		_ = meta.Close()
		return nil, fmt.Errorf("raftstore: open raft log %s: %w", dir, err)
	}
	return &diskStores{logs: w, stable: w, close: func() error {
		werr := w.Close()
		if merr := meta.Close(); merr != nil {
			return errors.Join(werr, fmt.Errorf("raftstore: close raft log meta: %w", merr))
		}
		if werr != nil {
			return fmt.Errorf("raftstore: close raft log: %w", werr)
		}
		return nil
	}}, nil
}

// openBolt opens raft-boltdb in <raftDir>/raft.db as log and stable store.
func openBolt(raftDir string) (*diskStores, error) {
	path := filepath.Join(raftDir, "raft.db")
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        path,
		BoltOptions: &bbolt.Options{Timeout: boltOpenTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: open bolt store %s: %w", path, err)
	}
	return &diskStores{logs: bolt, stable: bolt, close: func() error {
		if err := bolt.Close(); err != nil {
			return fmt.Errorf("raftstore: close bolt store: %w", err)
		}
		return nil
	}}, nil
}
