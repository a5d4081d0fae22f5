package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBoundaries(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(v int64) {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, numBuckets)
		}
		if hi := bucketHigh(i); hi < v {
			t.Fatalf("bucketHigh(bucketOf(%d)) = %d < value", v, hi)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d also fits bucket %d (high %d)", v, i-1, bucketHigh(i-1))
		}
		// Relative width of a bucket stays within the stated precision.
		if v >= 2<<subBits {
			if width := bucketHigh(i) - v; float64(width) > float64(v)/(1<<subBits) {
				t.Fatalf("value %d: bucket high %d is more than 1/%d above it", v, bucketHigh(i), 1<<subBits)
			}
		}
	}
	for v := range int64(5000) {
		check(v)
	}
	for range 100000 {
		check(r.Int64N(math.MaxInt64))
		check(r.Int64N(int64(time.Minute)))
	}
	check(math.MaxInt64)
	if bucketOf(math.MaxInt64) != numBuckets-1 {
		t.Fatalf("max int64 is in bucket %d, want the last (%d)", bucketOf(math.MaxInt64), numBuckets-1)
	}
}

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestQuantilesMatchExactWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 7, 100, 10001} {
		h := NewHistogram()
		vals := make([]int64, n)
		for i := range vals {
			// Log-normal-ish latencies from 1 µs to a few seconds.
			vals[i] = int64(math.Exp(r.NormFloat64()*2 + 13))
			h.Record(time.Duration(vals[i]))
		}
		slices.Sort(vals)
		for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
			want := exactQuantile(vals, q)
			got := int64(h.Quantile(q))
			if got < want || float64(got-want) > float64(want)/(1<<subBits)+1 {
				t.Errorf("n=%d q=%v: got %d, exact %d", n, q, got, want)
			}
		}
		if h.Max() != time.Duration(vals[n-1]) || h.Count() != uint64(n) {
			t.Errorf("n=%d: max %d count %d, want %d and %d", n, h.Max(), h.Count(), vals[n-1], n)
		}
		s := h.Summary()
		if !(s.P50Ms <= s.P90Ms && s.P90Ms <= s.P99Ms && s.P99Ms <= s.MaxMs) {
			t.Errorf("n=%d: summary out of order: %+v", n, s)
		}
	}
}

func TestSmallValuesAreExact(t *testing.T) {
	h := NewHistogram()
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.01, 1}, {0.5, 50}, {0.99, 99}, {1, 100}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %d, want %d", c.q, got, c.want)
		}
	}
	if s := h.Summary(); s.MeanMs != 50.5/1e6 {
		t.Errorf("mean %v ms, want %v", s.MeanMs, 50.5/1e6)
	}
}

func TestQuantileNeverExceedsMax(t *testing.T) {
	h := NewHistogram()
	h.Record(1000003) // inside a wide bucket: its high edge is above the value
	if got := h.Quantile(0.5); got != 1000003 {
		t.Fatalf("single value: p50 = %d, want the value itself", got)
	}
}

func TestNegativeAndEmpty(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Summary() != (LatencySummary{}) {
		t.Fatal("empty histogram should report zeros")
	}
	h.Record(-5 * time.Millisecond)
	if h.Max() != 0 || h.Count() != 1 {
		t.Fatalf("negative value: max %v count %d, want 0 and 1", h.Max(), h.Count())
	}
}

func TestMerge(t *testing.T) {
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 5000 {
		v := time.Duration(r.Int64N(int64(50 * time.Millisecond)))
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
		all.Record(v)
	}
	a.Merge(b)
	a.Merge(nil)
	a.Merge(NewHistogram())
	if a.Summary() != all.Summary() {
		t.Fatalf("merged %+v, want %+v", a.Summary(), all.Summary())
	}
}
