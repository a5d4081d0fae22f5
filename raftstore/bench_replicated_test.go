package raftstore

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// benchCommandBytes is the size of one benchmark command on the wire, the
// size the etcd comparison uses.
const benchCommandBytes = 256

// benchCommand returns a PutMember of exactly benchCommandBytes.
func benchCommand(b *testing.B, i int) *statev1.Command {
	m := &statev1.Member{NodeId: fmt.Sprintf("m%02d", i%64), RaftAddr: "127.0.0.1:7880", Voter: true}
	cmd := at(t0, putMemberCmd(m))
	// Length prefixes grow with the padding: shrink it until it fits.
	for pad := benchCommandBytes - proto.Size(cmd); pad > 0 && proto.Size(cmd) != benchCommandBytes; pad-- {
		m.AdminAddr = strings.Repeat("a", pad)
	}
	if n := proto.Size(cmd); n != benchCommandBytes {
		b.Fatalf("benchmark command is %d bytes, want %d", n, benchCommandBytes)
	}
	return cmd
}

// BenchmarkReplicatedApply measures committed applies on a three-node
// cluster in one process: on-disk stores with fsync, the real mTLS
// transport on loopback, 256-byte commands, one caller and 64 concurrent
// callers, for raft-wal and raft-boltdb (both behind the LogCache). It
// reports throughput and the p50/p99 latency of one Apply.
func BenchmarkReplicatedApply(b *testing.B) {
	for _, kind := range []logStoreKind{logStoreWAL, logStoreBolt} {
		b.Run(kind.String(), func(b *testing.B) {
			p := pkitest.New(b)
			var stores []*Store
			for _, id := range []string{"n1", "n2", "n3"} {
				stores = append(stores, openNodeWith(b, p, id, b.TempDir(), func(c *Config) { c.logStore = kind }))
			}
			leader := stores[0]
			bootstrapLeader(b, leader)
			// Benchmarks rerun their body to calibrate b.N: the bound is
			// for the whole run, not one round.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			for _, s := range stores[1:] {
				if err := leader.AddVoter(ctx, s.NodeID(), s.RaftAddr()); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := leader.Apply(ctx, initCmd("bench")); err != nil {
				b.Fatal(err)
			}
			b.Run("sequential", func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				i := 0
				for b.Loop() {
					start := time.Now()
					if _, err := leader.Apply(ctx, benchCommand(b, i)); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
					i++
				}
				reportLatency(b, lat)
			})
			b.Run("parallel64", func(b *testing.B) {
				var mu sync.Mutex
				var lat []time.Duration
				b.SetParallelism(max(1, 64/runtimeProcs()))
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					i := 0
					for pb.Next() {
						start := time.Now()
						if _, err := leader.Apply(ctx, benchCommand(b, i)); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(start))
						i++
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
				reportLatency(b, lat)
			})
		})
	}
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "applies/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// runtimeProcs is GOMAXPROCS, which RunParallel multiplies the
// parallelism by.
func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
