package loadgen

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is a scenario's result: a table for people, and JSON (the struct
// itself, with stable snake_case field names) for tools.
type Report interface {
	// WriteTable writes the result as an aligned table.
	WriteTable(w io.Writer) error
	// Failed says whether the run saw errors (closed sessions, rejected
	// nodes, failed handshakes), which make its figures suspect.
	Failed() bool
}

// table accumulates "name  value" rows.
type table struct {
	tw  *tabwriter.Writer
	err error
}

func newTable(w io.Writer, title string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(title, "")
	t.row(strings.Repeat("-", len(title)), "")
	return t
}

func (t *table) row(name, format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.tw, "%s\t%s\n", name, fmt.Sprintf(format, args...))
	}
}

func (t *table) latency(name string, l LatencySummary) {
	if l.Count == 0 {
		t.row(name, "no samples")
		return
	}
	t.row(name, "p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  (mean %.3f ms, %d samples)",
		l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs, l.MeanMs, l.Count)
}

func (t *table) server(s *ProcessUsage, perOp string) {
	if s == nil {
		return
	}
	t.row("server cpu", "%.2f cores (%.2f s CPU, pid %d)", s.Cores, s.CPUSeconds, s.PID)
	if s.CPUMicrosPerOp > 0 {
		t.row("server cpu per "+perOp, "%.3f µs", s.CPUMicrosPerOp)
	}
	t.row("server rss", "%s → %s", mib(s.RSSBeforeBytes), mib(s.RSSAfterBytes))
	if s.RSSBytesPerConn != 0 {
		t.row("server rss per connection", "%.1f KiB", s.RSSBytesPerConn/1024)
	}
}

func (t *table) generator(g *ProcessUsage) {
	if g != nil {
		t.row("generator cpu", "%.2f cores (this process, same window)", g.Cores)
	}
}

func (t *table) notes(warnings, errors []string) {
	for _, w := range warnings {
		t.row("warning", "%s", w)
	}
	for _, e := range errors {
		t.row("error", "%s", e)
	}
}

func (t *table) flush() error {
	if t.err != nil {
		return fmt.Errorf("loadgen: write table: %w", t.err)
	}
	if err := t.tw.Flush(); err != nil {
		return fmt.Errorf("loadgen: write table: %w", err)
	}
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func rate(pc float64) string {
	if pc == 0 {
		return "max"
	}
	return fmt.Sprintf("%g/s", pc)
}

// WriteTable implements Report.
func (r *FanoutResult) WriteTable(w io.Writer) error {
	c := r.Config
	t := newTable(w, "fanout")
	t.row("shape", "%d room(s) × %d subscribers, %d publisher(s) each at %s, window %d, %d-byte payload",
		c.Rooms, c.Subscribers, c.Publishers, rate(c.Rate), c.Window, c.PayloadBytes)
	t.row("window", "%.2f s after %.2f s warm-up (pre-signed %d nodes per publisher in %.2f s)",
		r.WindowSeconds, c.WarmupSeconds, c.PresignPerPubl, r.PresignSeconds)
	t.row("delivered", "%.0f msg/s  (%d messages, sum over receivers)", r.DeliveredPerSec, r.Delivered)
	t.row("published", "%.0f msg/s  (%d accepted, %d rejected)", r.PublishedPerSec, r.Published, r.Rejected)
	t.latency("end-to-end latency", r.Latency)
	t.latency("pack-ack latency", r.AckLatency)
	rs := r.Receivers
	t.row("receivers", "%d (%d sampled), received %d..%d, failed %d, incomplete %d, complete %v",
		rs.Receivers, rs.Sampled, rs.MinReceived, rs.MaxReceived, rs.Failed, rs.Incomplete, rs.Complete)
	t.server(r.Server, "delivered message")
	t.generator(r.Generator)
	t.notes(r.Warnings, r.Errors)
	return t.flush()
}

// Failed implements Report.
func (r *FanoutResult) Failed() bool { return len(r.Errors) > 0 || !r.Receivers.Complete }

// WriteTable implements Report.
func (r *IngestResult) WriteTable(w io.Writer) error {
	c := r.Config
	t := newTable(w, "ingest")
	t.row("shape", "%d publisher(s), packs of %d nodes, window %d, %d-byte payload",
		c.Publishers, c.PackSize, c.Window, c.PayloadBytes)
	t.row("window", "%.2f s after %.2f s warm-up (pre-signed %d nodes per publisher in %.2f s)",
		r.WindowSeconds, c.WarmupSeconds, c.PresignNodes, r.PresignSeconds)
	t.row("accepted", "%.0f nodes/s  (%d nodes, %d rejected)", r.AcceptedPerSec, r.Accepted, r.Rejected)
	t.row("packs", "%.0f packs/s  (%d packs)", r.PacksPerSec, r.Packs)
	t.latency("pack-ack latency", r.AckLatency)
	t.server(r.Server, "accepted node")
	t.generator(r.Generator)
	t.notes(r.Warnings, r.Errors)
	return t.flush()
}

// Failed implements Report.
func (r *IngestResult) Failed() bool { return len(r.Errors) > 0 }

// WriteTable implements Report.
func (r *JoinstormResult) WriteTable(w io.Writer) error {
	c := r.Config
	t := newTable(w, "joinstorm")
	mode := "close after welcome"
	if c.Hold {
		mode = "hold open"
	}
	t.row("shape", "%d dialer(s) into %d room(s), %s", c.Concurrency, c.Rooms, mode)
	if c.Locked {
		t.row("admission", "rooms locked to their own key %s; every hello carries a token signed for its peer (%.3f s signing before the window)", c.RoomKeyID, r.PresignSeconds)
	}
	t.row("window", "%.2f s", r.WindowSeconds)
	t.row("handshakes", "%.0f /s  (%d ok, %d failed)", r.HandshakesPerSec, r.Handshakes, r.Failures)
	t.latency("handshake latency", r.Latency)
	if c.Hold {
		t.row("held sessions", "%d", r.Held)
	}
	t.server(r.Server, "handshake")
	t.generator(r.Generator)
	t.notes(r.Warnings, r.Errors)
	return t.flush()
}

// Failed implements Report.
func (r *JoinstormResult) Failed() bool { return r.Failures > 0 || len(r.Errors) > 0 }
