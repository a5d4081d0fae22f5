package loadgen

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// spec1s is SPEC §3's bound: revoked sessions close on every node within
// one second.
const spec1s = time.Second

// RevokeResult is what a revoke run measured.
type RevokeResult struct {
	Scenario string         `json:"scenario"` // "revoke"
	Config   RevokeSettings `json:"config"`
	// Latency is, per revoked session over all rounds, the revoke call's
	// start → the 4003 close read by the client.
	Latency LatencySummary `json:"latency"`
	// LastClose is, per round, the call's start → the round's last
	// revoked session closed ("revoke → last session closed"), over the
	// rounds where every revoked session closed with 4003.
	LastClose LatencySummary `json:"last_close"`
	// RevokeCall is the Revoke call's own latency (the Raft commit), per
	// round.
	RevokeCall LatencySummary `json:"revoke_call"`
	// PerNode splits Latency by WebSocket URL.
	PerNode []RevokeNodeResult `json:"per_node"`
	Rounds  []RevokeRound      `json:"rounds"`
	// Closed counts revoked sessions that closed with 4003 "token
	// revoked"; Revoked all sessions of revoked peers.
	Revoked  int      `json:"revoked"`
	Closed   int      `json:"closed"`
	Warnings []string `json:"warnings"`
	Errors   []string `json:"errors"`
}

// RevokeNodeResult is the share of one WebSocket URL.
type RevokeNodeResult struct {
	URL     string         `json:"url"`
	Latency LatencySummary `json:"latency"`
}

// RevokeRound is one round.
type RevokeRound struct {
	Round        int     `json:"round"`
	Room         string  `json:"room"`
	RevokeCallMs float64 `json:"revoke_call_ms"`
	// LastCloseMs is call start → the last revoked session that closed
	// with 4003 (0 when none did).
	LastCloseMs float64 `json:"last_close_ms"`
	Revoked     int     `json:"revoked"`     // sessions of the revoked peer
	Closed      int     `json:"closed"`      // of those, closed with 4003
	WrongClose  int     `json:"wrong_close"` // closed some other way
	NotClosed   int     `json:"not_closed"`  // still open at CloseTimeout
	// Bystanders are the other peers' sessions; BystandersLost of them
	// were closed or did not answer a round trip.
	Bystanders     int `json:"bystanders"`
	BystandersLost int `json:"bystanders_lost"`
}

// RevokeSettings echoes the configuration into the report.
type RevokeSettings struct {
	URLs                []string `json:"urls"`
	Admin               string   `json:"admin"` // where Revoke was called
	Sessions            int      `json:"sessions"`
	Peers               int      `json:"peers"`
	By                  RevokeBy `json:"by"`
	Rounds              int      `json:"rounds"`
	CloseTimeoutSeconds float64  `json:"close_timeout_seconds"`
	RoomKeyID           string   `json:"room_key_id"`
}

func newRevokeResult(cfg RevokeConfig, kid string) *RevokeResult {
	return &RevokeResult{
		Scenario: "revoke",
		Config: RevokeSettings{
			URLs: cfg.URLs, Admin: cfg.Admin.Addrs[0], Sessions: cfg.Sessions, Peers: cfg.Peers, By: cfg.By,
			Rounds: cfg.Rounds, CloseTimeoutSeconds: cfg.CloseTimeout.Seconds(), RoomKeyID: kid,
		},
		Rounds:   []RevokeRound{},
		Warnings: []string{},
		Errors:   []string{},
	}
}

// finish fills the summaries.
func (r *revokeRun) finish() {
	res := r.res
	res.Latency, res.LastClose, res.RevokeCall = r.all.Summary(), r.last.Summary(), r.call.Summary()
	res.PerNode = make([]RevokeNodeResult, len(r.nodes))
	for i, h := range r.nodes {
		res.PerNode[i] = RevokeNodeResult{URL: r.cfg.URLs[i], Latency: h.Summary()}
	}
	for _, rr := range res.Rounds {
		res.Revoked += rr.Revoked
		res.Closed += rr.Closed
	}
	res.Errors = r.errs.list()
	if r.all.Count() > 0 && r.all.Max() > spec1s {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the slowest revoked session closed %.0f ms after the call: over SPEC §3's one second", ms(r.all.Max())))
	}
}

// WriteTable implements Report.
func (r *RevokeResult) WriteTable(w io.Writer) error {
	c := r.Config
	t := newTable(w, "revoke")
	t.row("shape", "%d session(s) of %d peer(s) over %d URL(s) (%s), %d round(s)", c.Sessions, c.Peers, len(c.URLs), strings.Join(c.URLs, ", "), c.Rounds)
	t.row("revocation", "Revoke by %s on %s, peer 0 (%d of %d sessions revoked, %d closed with 4003); room key %s",
		c.By, c.Admin, r.Revoked, c.Sessions*len(r.Rounds), r.Closed, c.RoomKeyID)
	t.latency("revoke → session closed", r.Latency)
	t.latency("revoke → last session closed", r.LastClose)
	t.latency("revoke call", r.RevokeCall)
	if len(r.PerNode) > 1 {
		for _, n := range r.PerNode {
			if n.Latency.Count == 0 {
				t.row("  "+n.URL, "no revoked session")
				continue
			}
			t.row("  "+n.URL, "p50 %.3f ms  p99 %.3f ms  max %.3f ms  (%d sessions)", n.Latency.P50Ms, n.Latency.P99Ms, n.Latency.MaxMs, n.Latency.Count)
		}
	}
	for _, rr := range r.Rounds {
		t.row(fmt.Sprintf("round %d", rr.Round), "call %.2f ms, last close %.2f ms; %d/%d closed, %d other close, %d open; bystanders %d, lost %d",
			rr.RevokeCallMs, rr.LastCloseMs, rr.Closed, rr.Revoked, rr.WrongClose, rr.NotClosed, rr.Bystanders, rr.BystandersLost)
	}
	t.notes(r.Warnings, r.Errors)
	return t.flush()
}

// Failed implements Report: any revoked session that did not close with
// 4003 in time, or any other session lost.
func (r *RevokeResult) Failed() bool { return len(r.Errors) > 0 || r.Closed == 0 }
