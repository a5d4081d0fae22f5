package loadgen

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// AdminResult is what an admin-API run measured over its window.
type AdminResult struct {
	Scenario      string        `json:"scenario"` // "admin-writes" or "admin-reads"
	Config        AdminSettings `json:"config"`
	WindowSeconds float64       `json:"window_seconds"`
	// Ops are calls that succeeded and completed inside the window.
	Ops       uint64  `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	// Latency is call start → response, as the client sees it.
	Latency LatencySummary `json:"latency"`
	// ErrorsByCode counts failed calls (warm-up and window) by gRPC code
	// name ("UNAVAILABLE"); empty when none failed.
	ErrorsByCode map[string]uint64 `json:"errors_by_code"`
	// PerAddress splits the figures by admin address when there are
	// several (a follower forwards writes, so its callers wait longer).
	PerAddress []AdminAddressResult `json:"per_address,omitempty"`
	// Server is the process ServerPID names (one node), over the window;
	// its cpu_us_per_op divides by every call in the window, including
	// calls answered by other nodes.
	Server    *ProcessUsage `json:"server,omitempty"`
	Generator *ProcessUsage `json:"generator,omitempty"`
	Warnings  []string      `json:"warnings"`
	// Errors has one line per code: count, code, first message.
	Errors []string `json:"errors"`
}

// AdminAddressResult is the share of one admin address.
type AdminAddressResult struct {
	Addr      string         `json:"addr"`
	Clients   int            `json:"clients"`
	Ops       uint64         `json:"ops"`
	OpsPerSec float64        `json:"ops_per_sec"`
	Latency   LatencySummary `json:"latency"`
}

// AdminSettings echoes the configuration into the report.
type AdminSettings struct {
	Addrs []string `json:"addrs"`
	// Command is the control-plane command measured: "set-policy",
	// "get-policy" or "cluster.status".
	Command string `json:"command"`
	// Consistency of reads: "linearizable" or "stale" for get-policy,
	// "node-local" for cluster.status ("" for writes).
	Consistency    string  `json:"consistency,omitempty"`
	Clients        int     `json:"clients"`
	ClientsPerConn int     `json:"clients_per_conn"`
	Connections    int     `json:"connections"`
	WarmupSeconds  float64 `json:"warmup_seconds"`
	DurationSecs   float64 `json:"duration_seconds"`
	RoomWrites     int     `json:"room_writes,omitempty"`
	RoomPrefix     string  `json:"room_prefix"` // with the run id
}

func (r *adminRun) newResult() *AdminResult {
	cfg := r.cfg
	res := &AdminResult{
		Scenario: "admin-writes",
		Config: AdminSettings{
			Addrs: cfg.Addrs, Command: r.command(), Clients: cfg.Clients, ClientsPerConn: cfg.ClientsPerConn,
			WarmupSeconds: cfg.Warmup.Seconds(), DurationSecs: cfg.Duration.Seconds(), RoomPrefix: r.prefix,
		},
		ErrorsByCode: map[string]uint64{},
		Warnings:     []string{},
		Errors:       []string{},
	}
	if r.mode == adminWrites {
		res.Config.RoomWrites = cfg.RoomWrites
	} else {
		res.Scenario = "admin-reads"
		switch {
		case cfg.Read == AdminReadStatus:
			res.Config.Consistency = "node-local"
		case cfg.Stale:
			res.Config.Consistency = "stale"
		default:
			res.Config.Consistency = "linearizable"
		}
	}
	if cfg.ServerPID != 0 && len(cfg.Addrs) > 1 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("server usage is process %d alone, one of the nodes behind the %d addresses", cfg.ServerPID, len(cfg.Addrs)))
	}
	return res
}

// finish merges the clients' counts into res.
func (r *adminRun) finish(res *AdminResult, clients []*adminClient, window time.Duration, server, generator *ProcessUsage) {
	res.WindowSeconds = window.Seconds()
	all := NewHistogram()
	errs := newAdminErrors()
	byAddr := make([]*Histogram, len(r.cfg.Addrs))
	per := make([]AdminAddressResult, len(r.cfg.Addrs))
	for a, addr := range r.cfg.Addrs {
		byAddr[a] = NewHistogram()
		per[a].Addr = addr
	}
	for _, c := range clients {
		all.Merge(c.hist)
		byAddr[c.addr].Merge(c.hist)
		per[c.addr].Clients++
		per[c.addr].Ops += c.ops
		res.Ops += c.ops
		errs.merge(c.errs)
	}
	res.OpsPerSec = float64(res.Ops) / res.WindowSeconds
	res.Latency = all.Summary()
	res.ErrorsByCode = errs.counts
	res.Errors = errs.list()
	if len(per) > 1 {
		for a := range per {
			per[a].OpsPerSec = float64(per[a].Ops) / res.WindowSeconds
			per[a].Latency = byAddr[a].Summary()
		}
		res.PerAddress = per
	}
	if server != nil && res.Ops > 0 {
		server.CPUMicrosPerOp = server.CPUSeconds * 1e6 / float64(res.Ops)
	}
	res.Server, res.Generator = server, generator
	if res.Ops == 0 {
		res.Warnings = append(res.Warnings, "no call completed inside the window")
	}
}

// WriteTable implements Report.
func (r *AdminResult) WriteTable(w io.Writer) error {
	c := r.Config
	t := newTable(w, r.Scenario)
	what := c.Command
	if c.Consistency != "" {
		what += " (" + c.Consistency + ")"
	}
	t.row("shape", "%s from %d client(s) over %d connection(s) to %s", what, c.Clients, c.Connections, strings.Join(c.Addrs, ", "))
	t.row("window", "%.2f s after %.2f s warm-up", r.WindowSeconds, c.WarmupSeconds)
	t.row("calls", "%.0f /s  (%d ok in the window)", r.OpsPerSec, r.Ops)
	t.latency("latency", r.Latency)
	for _, a := range r.PerAddress {
		t.row("  "+a.Addr, "%.0f /s from %d client(s), p50 %.3f ms  p99 %.3f ms  max %.3f ms",
			a.OpsPerSec, a.Clients, a.Latency.P50Ms, a.Latency.P99Ms, a.Latency.MaxMs)
	}
	t.server(r.Server, "call")
	t.generator(r.Generator)
	t.notes(r.Warnings, r.Errors)
	return t.flush()
}

// Failed implements Report: any failed call, or none that succeeded.
func (r *AdminResult) Failed() bool { return len(r.ErrorsByCode) > 0 || r.Ops == 0 }
