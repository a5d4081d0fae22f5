package raftstore

import (
	"fmt"
	"testing"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// BenchmarkApply measures committed applies per second on an on-disk
// single node (raft-wal, fsync on), sequentially and from parallel callers,
// which Raft batches into shared fsyncs.
func BenchmarkApply(b *testing.B) {
	p := pkitest.New(b)
	s := openNode(b, p, "bench", b.TempDir())
	bootstrapLeader(b, s)
	ctx := testContext(b)
	if _, err := s.Apply(ctx, initCmd("bench")); err != nil {
		b.Fatal(err)
	}
	cmd := func(i int) *statev1.Command {
		return putMemberCmd(&statev1.Member{NodeId: fmt.Sprintf("m%d", i%64), RaftAddr: "127.0.0.1:7880", Voter: true})
	}

	b.Run("sequential", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.Apply(ctx, cmd(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(32) // 32 * GOMAXPROCS callers
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.Apply(ctx, cmd(i)); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
	})
}
