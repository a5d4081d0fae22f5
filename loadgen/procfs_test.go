package loadgen

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// comm may hold spaces and parentheses; fields count from the last ')'.
	line := "4242 (node (x) y) S 1 4242 4242 0 -1 4194560 1719 0 0 0 250 75 0 0 20 0 9 0 1300 1000000 3000 18446744073709551615\n"
	got, err := ParseProcStat([]byte(line))
	if err != nil || got != 325 {
		t.Fatalf("ParseProcStat = %d, %v; want 325", got, err)
	}
	for _, bad := range []string{
		"", "1 (x", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 abc 1",
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 18446744073709551615 1",
	} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("ParseProcStat(%q) succeeded", bad)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tnodalmerge\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"
	got, err := ParseVmRSS([]byte(status))
	if err != nil || got != 12345*1024 {
		t.Fatalf("ParseVmRSS = %d, %v; want %d", got, err, 12345*1024)
	}
	for _, bad := range []string{"", "VmRSS: 12 MB\n", "VmRSS: x kB\n", "VmRSS: -3 kB", "Name: x\n"} {
		if _, err := ParseVmRSS([]byte(bad)); err == nil {
			t.Errorf("ParseVmRSS(%q) succeeded", bad)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	before, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the clock-tick counter moves (bounded: the machine
	// is shared, so wall time says little about CPU time).
	var after ProcSample
	deadline := time.Now().Add(10 * time.Second)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = strings.Repeat("x", x%64)
		if x%100000 != 0 {
			continue
		}
		if after, err = ReadProc(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if after.CPU > before.CPU {
			break
		}
	}
	if before.RSSBytes <= 0 || after.CPU <= before.CPU {
		t.Fatalf("before %+v after %+v: want RSS > 0 and CPU time to grow", before, after)
	}
	u := usage(42, before, after, 10)
	if u.CPUSeconds <= 0 || u.Cores <= 0 || math.Abs(u.CPUMicrosPerOp-u.CPUSeconds*1e5) > 1e-6 {
		t.Fatalf("usage = %+v", u)
	}
	if _, err := ReadProc(1 << 30); err == nil {
		t.Fatal("ReadProc of a missing pid succeeded")
	}
	if _, err := newProcProbe(1 << 30); err == nil {
		t.Fatal("newProcProbe accepted a missing pid")
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 100 0 0 0 12 34 0 0 20 0 1 0 5 1000 100 1"))
	f.Add([]byte("2 ((a) b)) R 1 2 3 4 5 6 7 8 9 10 99999999999 1"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseProcStat(b)
	})
}

func FuzzParseVmRSS(f *testing.F) {
	f.Add([]byte("VmRSS:\t  1 kB\n"))
	f.Add([]byte("Name: x\nVmRSS: 99999999999999999999 kB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := ParseVmRSS(b); err == nil && v < 0 {
			t.Fatalf("negative RSS %d", v)
		}
	})
}
