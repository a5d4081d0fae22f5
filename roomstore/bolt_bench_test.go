package roomstore

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// The bbolt engine the log was measured against (DESIGN.md): one file, a
// bucket per room keyed by insertion sequence, DB.Batch for group commit.
// It writes the same record bodies and applies to a MemStore, as the log
// engine does, but skips the pending-parent bookkeeping.

// boltEngine sets DB.MaxBatchDelay: bbolt's default of 10 ms caps a
// sequential writer at 100 Puts/s, and 0 stops concurrent Puts grouping.
func boltEngine(delay time.Duration) benchEngine {
	return benchEngine{"bolt-delay=" + delay.String(), func(b *testing.B, dir string) benchStore {
		db, err := bolt.Open(filepath.Join(dir, "rooms.db"), 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		db.MaxBatchDelay = delay
		return boltBench{db}
	}}
}

type boltBench struct{ db *bolt.DB }

func (s boltBench) close(b *testing.B) {
	if err := s.db.Close(); err != nil {
		b.Fatal(err)
	}
}

func (s boltBench) room(b *testing.B, name string) history.Store {
	mem := history.NewMemStore()
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(name))
		if bk == nil {
			return nil
		}
		var nodes []history.Accepted
		err := bk.ForEach(func(_, v []byte) error {
			body, _, err := readFrame(v)
			if err != nil {
				return err
			}
			a, err := decodeNodeRecord(body)
			nodes = append(nodes, a)
			return err
		})
		if err != nil {
			return err
		}
		return mem.Put(nodes)
	})
	if err != nil {
		b.Fatal(err)
	}
	return &boltRoom{MemStore: mem, db: s.db, name: []byte(name)}
}

type boltRoom struct {
	*history.MemStore
	db   *bolt.DB
	name []byte
}

func (r *boltRoom) Put(nodes []history.Accepted) error {
	recs := make([][]byte, len(nodes))
	for i, a := range nodes {
		var err error
		if recs[i], err = appendNodeRecord(nil, a); err != nil {
			return err
		}
	}
	err := r.db.Batch(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(r.name)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			seq, err := bk.NextSequence()
			if err != nil {
				return err
			}
			if err := bk.Put(binary.BigEndian.AppendUint64(nil, seq), rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return r.MemStore.Put(nodes)
}
