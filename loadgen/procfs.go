package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of utime and stime in /proc/PID/stat. The kernel
// exports these in USER_HZ, which is 100 on every mainstream Linux
// architecture whatever the kernel's internal HZ; reading it properly
// needs sysconf(_SC_CLK_TCK), i.e. cgo, for no practical gain.
const userHZ = 100

// ProcSample is one reading of a process's CPU time and resident memory.
type ProcSample struct {
	At       time.Time
	CPU      time.Duration // utime + stime
	RSSBytes int64
}

// ReadProc reads /proc/PID/stat and /proc/PID/status.
func ReadProc(pid int) (ProcSample, error) {
	at := time.Now()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("loadgen: read server stats: %w", err)
	}
	ticks, err := ParseProcStat(stat)
	if err != nil {
		return ProcSample{}, fmt.Errorf("loadgen: /proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("loadgen: read server status: %w", err)
	}
	rss, err := ParseVmRSS(status)
	if err != nil {
		return ProcSample{}, fmt.Errorf("loadgen: /proc/%d/status: %w", pid, err)
	}
	return ProcSample{At: at, CPU: time.Duration(ticks) * time.Second / userHZ, RSSBytes: rss}, nil
}

// ParseProcStat returns utime+stime (clock ticks) from the contents of
// /proc/PID/stat. The second field (comm) is in parentheses and may itself
// contain spaces and parentheses, so fields are counted from the last ')'.
func ParseProcStat(b []byte) (uint64, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, errors.New("no ')' closing the command name")
	}
	// After ")": state(3) ppid(4) ... utime(14) stime(15).
	fields := bytes.Fields(b[end+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("%d fields after the command name, want at least %d", len(fields), stime+1)
	}
	u, err := strconv.ParseUint(string(fields[utime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	s, err := strconv.ParseUint(string(fields[stime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	if u+s < u {
		return 0, errors.New("utime+stime overflows")
	}
	return u + s, nil
}

// ParseVmRSS returns the resident set size in bytes from the contents of
// /proc/PID/status ("VmRSS:   1234 kB").
func ParseVmRSS(b []byte) (int64, error) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("VmRSS line is not \"<n> kB\"")
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > 1<<53 {
			return 0, fmt.Errorf("VmRSS value out of range")
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line")
}

// ProcessUsage is what a process (the server, or the generator itself)
// spent during a measured window.
type ProcessUsage struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// Cores is CPU seconds per wall-clock second of the window.
	Cores          float64 `json:"cores"`
	RSSBeforeBytes int64   `json:"rss_before_bytes"`
	RSSAfterBytes  int64   `json:"rss_after_bytes"`
	// CPUMicrosPerOp is server CPU per delivered message (fanout),
	// accepted node (ingest) or handshake (joinstorm).
	CPUMicrosPerOp float64 `json:"cpu_us_per_op,omitempty"`
	// RSSBytesPerConn is the RSS delta per held connection (joinstorm
	// --hold only).
	RSSBytesPerConn float64 `json:"rss_bytes_per_conn,omitempty"`
}

// usage compares two samples of pid; ops (messages, nodes, handshakes)
// gives the per-op CPU cost when positive.
func usage(pid int, before, after ProcSample, ops uint64) *ProcessUsage {
	u := &ProcessUsage{
		PID:            pid,
		CPUSeconds:     (after.CPU - before.CPU).Seconds(),
		RSSBeforeBytes: before.RSSBytes,
		RSSAfterBytes:  after.RSSBytes,
	}
	if wall := after.At.Sub(before.At).Seconds(); wall > 0 {
		u.Cores = u.CPUSeconds / wall
	}
	if ops > 0 {
		u.CPUMicrosPerOp = u.CPUSeconds * 1e6 / float64(ops)
	}
	return u
}

// procProbe samples a server process when a PID was given; with pid 0
// every method does nothing, so scenarios need no special cases.
type procProbe struct {
	pid    int
	before ProcSample
}

func newProcProbe(pid int) (*procProbe, error) {
	p := &procProbe{pid: pid}
	if pid == 0 {
		return p, nil
	}
	// Fail before the run, not after it, when the PID is wrong.
	if _, err := ReadProc(pid); err != nil {
		return nil, err
	}
	return p, nil
}

// start marks the beginning of the measured window.
func (p *procProbe) start() error {
	if p.pid == 0 {
		return nil
	}
	s, err := ReadProc(p.pid)
	p.before = s
	return err
}

// stop ends the window and reports the usage over it.
func (p *procProbe) stop(ops uint64) (*ProcessUsage, error) {
	if p.pid == 0 {
		return nil, nil
	}
	after, err := ReadProc(p.pid)
	if err != nil {
		return nil, err
	}
	return usage(p.pid, p.before, after, ops), nil
}

// newSelfProbe samples the generator's own process.
func newSelfProbe() *procProbe { return &procProbe{pid: os.Getpid()} }
