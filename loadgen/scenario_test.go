package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func checkLatency(t *testing.T, name string, l LatencySummary) {
	t.Helper()
	if l.Count == 0 || l.P50Ms <= 0 {
		t.Errorf("%s: no samples: %+v", name, l)
	}
	if !(l.P50Ms <= l.P90Ms && l.P90Ms <= l.P99Ms && l.P99Ms <= l.MaxMs) {
		t.Errorf("%s: out of order: %+v", name, l)
	}
}

// checkJSON round-trips a report through JSON and checks the field names
// that scripts rely on.
func checkJSON(t *testing.T, r Report, fields ...string) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("report JSON does not parse: %v", err)
	}
	for _, f := range fields {
		if _, ok := m[f]; !ok {
			t.Errorf("report JSON lacks %q: %s", f, b)
		}
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil || table.Len() == 0 {
		t.Fatalf("WriteTable: %v (%d bytes)", err, table.Len())
	}
}

func TestFanoutPaced(t *testing.T) {
	url, pid := startServer(t)
	cfg := DefaultFanoutConfig()
	cfg.URL, cfg.ServerPID = url, pid
	cfg.Subscribers, cfg.Publishers = 8, 2
	cfg.Rate, cfg.Window, cfg.PayloadBytes = 300, 8, 64
	cfg.Warmup, cfg.Duration = 200*time.Millisecond, time.Second
	cfg.Samples = 3
	res, err := RunFanout(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 || res.Failed() {
		t.Fatalf("run failed: %v, receivers %+v", res.Errors, res.Receivers)
	}
	rs := res.Receivers
	// Every receiver of the room read every relayed pack: one count.
	if rs.Receivers != 8 || rs.Sampled != 3 || !rs.Complete || rs.MinReceived != rs.MaxReceived || rs.MinReceived == 0 {
		t.Fatalf("receivers %+v", rs)
	}
	if res.Delivered == 0 || res.Published == 0 || res.Rejected != 0 {
		t.Fatalf("delivered %d published %d rejected %d", res.Delivered, res.Published, res.Rejected)
	}
	// Pacing caps the publish rate: 2 publishers × 300/s.
	if res.PublishedPerSec > 2*300*1.15 {
		t.Errorf("published %.0f/s, over the configured 600/s", res.PublishedPerSec)
	}
	// Each published node reaches all 8 receivers; the window's edges
	// blur the ratio a little.
	if ratio := res.DeliveredPerSec / res.PublishedPerSec; ratio < 6 || ratio > 10 {
		t.Errorf("delivered/published = %.2f, want about 8", ratio)
	}
	checkLatency(t, "end-to-end", res.Latency)
	checkLatency(t, "ack", res.AckLatency)
	if s := res.Server; s == nil || s.PID != pid || s.RSSAfterBytes <= 0 || s.CPUSeconds < 0 || s.Cores < 0 {
		t.Errorf("server usage %+v", s)
	}
	if res.PresignExhausted {
		t.Error("a paced run exhausted its pre-signed chain")
	}
	checkJSON(t, res, "scenario", "delivered_per_sec", "published_per_sec", "latency", "receivers", "server", "config")
}

func TestFanoutMaxRateManyRooms(t *testing.T) {
	url, _ := startServer(t)
	cfg := DefaultFanoutConfig()
	cfg.URL = url
	cfg.Rooms, cfg.Subscribers = 3, 4
	cfg.Warmup, cfg.Duration = 100*time.Millisecond, 700*time.Millisecond
	cfg.Presign = 3000
	cfg.Samples = 2
	res, err := RunFanout(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 || !res.Receivers.Complete || res.Receivers.Receivers != 12 {
		t.Fatalf("errors %v, receivers %+v", res.Errors, res.Receivers)
	}
	if res.Delivered == 0 || res.Server != nil {
		t.Fatalf("delivered %d, server %+v (no pid given)", res.Delivered, res.Server)
	}
	checkLatency(t, "end-to-end", res.Latency)
}

func TestIngest(t *testing.T) {
	url, pid := startServer(t)
	cfg := DefaultIngestConfig()
	cfg.URL, cfg.ServerPID = url, pid
	cfg.Publishers, cfg.PackSize, cfg.Window = 2, 4, 2
	cfg.Warmup, cfg.Duration = 100*time.Millisecond, time.Second
	cfg.Presign = 4000
	res, err := RunIngest(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 || res.Accepted == 0 || res.Rejected != 0 {
		t.Fatalf("errors %v, accepted %d, rejected %d", res.Errors, res.Accepted, res.Rejected)
	}
	// Counted from pack-acks: whole packs, give or take one per
	// publisher at each window edge.
	if diff := int64(res.Accepted) - 4*int64(res.Packs); diff < -16 || diff > 16 {
		t.Errorf("accepted %d nodes in %d packs of 4", res.Accepted, res.Packs)
	}
	checkLatency(t, "ack", res.AckLatency)
	if res.Server == nil || res.Server.CPUMicrosPerOp <= 0 {
		t.Errorf("server usage %+v", res.Server)
	}
	checkJSON(t, res, "scenario", "accepted_per_sec", "ack_latency", "packs_per_sec")
}

func TestJoinstorm(t *testing.T) {
	url, pid := startServer(t)
	cfg := DefaultJoinstormConfig()
	cfg.URL, cfg.ServerPID = url, pid
	cfg.Rooms, cfg.Concurrency, cfg.Duration = 2, 4, 500*time.Millisecond
	res, err := RunJoinstorm(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Handshakes == 0 || res.Failures != 0 || len(res.Errors) > 0 || res.Held != 0 {
		t.Fatalf("%+v", res)
	}
	checkLatency(t, "handshake", res.Latency)
	checkJSON(t, res, "scenario", "handshakes_per_sec", "latency", "failures")
}

func TestJoinstormHold(t *testing.T) {
	url, pid := startServer(t)
	cfg := DefaultJoinstormConfig()
	cfg.URL, cfg.ServerPID = url, pid
	cfg.Rooms, cfg.Concurrency, cfg.Duration = 3, 4, 20*time.Second
	cfg.Hold, cfg.MaxConnections = true, 60
	start := time.Now()
	res, err := RunJoinstorm(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// MaxConnections ends the storm long before Duration.
	if res.Held != 60 || res.Handshakes != 60 || res.Failures != 0 || time.Since(start) > 15*time.Second {
		t.Fatalf("held %d handshakes %d failures %d after %s; errors %v", res.Held, res.Handshakes, res.Failures, time.Since(start), res.Errors)
	}
	s := res.Server
	if s == nil || s.RSSAfterBytes <= 0 || s.RSSBytesPerConn == 0 {
		t.Fatalf("server usage %+v", s)
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "upper bound") }) {
		t.Errorf("warnings %v lack the RSS caveat", res.Warnings)
	}
}

func TestUnreachableServer(t *testing.T) {
	// A port nothing listens on: the first dial fails and the run says so.
	cfg := DefaultJoinstormConfig()
	cfg.URL, cfg.Duration = "ws://127.0.0.1:1", 200*time.Millisecond
	res, err := RunJoinstorm(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Handshakes != 0 || res.Failures == 0 || !res.Failed() || len(res.Errors) == 0 {
		t.Fatalf("%+v", res)
	}
	fan := DefaultFanoutConfig()
	fan.URL, fan.Presign, fan.Subscribers = "ws://127.0.0.1:1", 10, 2
	if _, err := RunFanout(testCtx(t), fan); err == nil || !strings.Contains(err.Error(), "dial") {
		t.Fatalf("fanout against nothing: %v", err)
	}
}
