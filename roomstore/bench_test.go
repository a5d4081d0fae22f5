package roomstore

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// The benchmarks compare storage engines on the same workloads (see
// DESIGN.md for the figures). An engine opens a directory and hands out
// rooms.
type benchEngine struct {
	name string
	open func(b *testing.B, dir string) benchStore
}

type benchStore interface {
	room(b *testing.B, name string) history.Store
	close(b *testing.B)
}

type logBench struct{ s *Store }

func (l logBench) room(b *testing.B, name string) history.Store { return openRoom(b, l.s, name) }
func (l logBench) close(b *testing.B) {
	if err := l.s.Close(); err != nil {
		b.Fatal(err)
	}
}

var logEngine = benchEngine{"log", func(b *testing.B, dir string) benchStore {
	return logBench{openStore(b, dir, Options{})}
}}

// benchEngines lists what the benchmarks compare: this package's log and
// the bbolt alternative of bolt_bench_test.go.
func benchEngines() []benchEngine {
	return []benchEngine{logEngine, boltEngine(time.Millisecond), boltEngine(0)}
}

// benchNode makes a node cheaply: stores do not verify signatures, so a
// fixed one does, and the benchmarks measure storage, not ed25519.
func benchNode(b *testing.B, seq uint64, parent history.ID) history.Accepted {
	tx := &syncv1.Transaction{
		Author:  make([]byte, 32),
		Lamport: seq,
		WallMs:  testWall,
		Parents: [][]byte{parent[:]},
		Ops:     []*syncv1.Op{{Path: "world/player/7", Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: fmt.Appendf(nil, `{"x":%d,"pad":"0123456789abcdef0123456789abcdef"}`, seq)}}}},
	}
	tb, err := proto.Marshal(tx)
	if err != nil {
		b.Fatal(err)
	}
	n := &syncv1.Node{TransactionBytes: tb, Signature: make([]byte, 64)}
	return history.Accepted{Node: n, ID: history.NodeID(n), Lamport: seq, Parents: []history.ID{parent}}
}

// BenchmarkPut: every node names its room's genesis node as parent, so any
// node can go to any room in any order. nodes/s is the figure to compare.
func BenchmarkPut(b *testing.B) {
	for _, eng := range benchEngines() {
		for _, rooms := range []int{1, 100} {
			for _, mode := range []struct {
				name        string
				batch, conc int
			}{{"seq1", 1, 1}, {"conc64x1", 1, 64}, {"seq64batch", 64, 1}} {
				b.Run(fmt.Sprintf("engine=%s/rooms=%d/%s", eng.name, rooms, mode.name), func(b *testing.B) {
					benchPut(b, eng, rooms, mode.batch, mode.conc)
				})
			}
		}
	}
}

func benchPut(b *testing.B, eng benchEngine, rooms, batch, conc int) {
	st := eng.open(b, b.TempDir())
	defer st.close(b)
	handles := make([]history.Store, rooms)
	genesis := make([]history.ID, rooms)
	for i := range handles {
		handles[i] = st.room(b, fmt.Sprintf("room-%d", i))
		g := benchNode(b, 0, history.ID{byte(i)})
		g.Parents = nil
		mustPut(b, handles[i], g)
		genesis[i] = g.ID
	}
	puts := make([][]history.Accepted, b.N)
	var seq uint64 = 1
	for i := range puts {
		r := i % rooms
		puts[i] = make([]history.Accepted, batch)
		for j := range puts[i] {
			puts[i][j] = benchNode(b, seq, genesis[r])
			seq++
		}
	}
	var next atomic.Int64
	b.SetParallelism((conc + 1) / 2) // × GOMAXPROCS (2) goroutines
	b.ResetTimer()
	if conc == 1 {
		for i := range b.N {
			if err := handles[i%rooms].Put(puts[i]); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(next.Add(1) - 1)
				if err := handles[i%rooms].Put(puts[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "nodes/s")
}

// BenchmarkOpen100k measures loading a room of 100,000 nodes (a chain of
// packs of 1000) from disk into memory.
func BenchmarkOpen100k(b *testing.B) {
	const total, pack = 100_000, 1000
	for _, eng := range benchEngines() {
		b.Run("engine="+eng.name, func(b *testing.B) {
			dir := b.TempDir()
			st := eng.open(b, dir)
			r := st.room(b, "big")
			parent := history.ID{1}
			first := true
			for i := 0; i < total; i += pack {
				nodes := make([]history.Accepted, pack)
				for j := range nodes {
					nodes[j] = benchNode(b, uint64(i+j+1), parent)
					if first {
						nodes[j].Parents = nil
						first = false
					}
					parent = nodes[j].ID
				}
				mustPut(b, r, nodes...)
			}
			st.close(b)
			b.ResetTimer()
			for range b.N {
				st := eng.open(b, dir)
				if n := st.room(b, "big").Len(); n != total {
					b.Fatalf("loaded %d nodes, want %d", n, total)
				}
				st.close(b)
			}
		})
	}
}
