package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"testing"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

func testKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestPolicyIndex: the entry in force at a node's Lamport decides, its
// first matching rule decides who writes, else its default; the server
// key always writes; a room without a policy allows everything.
func TestPolicyIndex(t *testing.T) {
	server, alice, bob := testKey(t), testKey(t), testKey(t)
	p := newPolicyIndex(server, slog.New(slog.DiscardHandler))
	first := &statev1.PolicyEntry{EffectiveLamport: 10, DefaultAllow: true, Rules: []*statev1.PolicyRule{
		{PathGlob: "world/**", CanWrite: [][]byte{alice}},
	}}
	second := &statev1.PolicyEntry{EffectiveLamport: 20, DefaultAllow: false, Rules: []*statev1.PolicyRule{
		{PathGlob: "world/*", CanWrite: [][]byte{bob}},
		{PathGlob: "world/**", CanWrite: [][]byte{alice}},
		{PathGlob: "bad/**/**x", CanWrite: [][]byte{bob}}, // does not compile: grants nothing
	}}
	p.reset([]*statev1.Room{{Name: "r", Policy: []*statev1.PolicyEntry{first}}})
	p.update("r", []*statev1.PolicyEntry{first, second})
	for _, tc := range []struct {
		name    string
		room    string
		author  ed25519.PublicKey
		lamport uint64
		path    string
		want    bool
	}{
		{"before the first entry", "r", bob, 9, "world/x", true},
		{"rule allows its writer", "r", alice, 10, "world/x/y", true},
		{"rule refuses others", "r", bob, 15, "world/x/y", false},
		{"default allow", "r", bob, 19, "chat/1", true},
		{"second entry: first match wins", "r", bob, 20, "world/x", true},
		{"second entry: first match refuses alice", "r", alice, 20, "world/x", false},
		{"second entry: deeper path, second rule", "r", alice, 25, "world/x/y", true},
		{"second entry: default deny", "r", alice, 1 << 40, "chat/1", false},
		{"server key always writes", "r", server, 30, "world/x", true},
		{"room without policy", "other", bob, 30, "world/x", true},
	} {
		if got := p.AllowWrite(tc.room, tc.author, tc.lamport, tc.path); got != tc.want {
			t.Errorf("%s: AllowWrite = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPolicyIndexAppends: an update whose timeline extends the compiled one
// compiles only the new entries and keeps the compiled ones (the same
// compiled rules, not recompiled); a timeline that is not an extension
// (a different last entry, a shorter one) is recompiled in full; and the
// answers are those of a full compilation either way.
func TestPolicyIndexAppends(t *testing.T) {
	server, alice, bob := testKey(t), testKey(t), testKey(t)
	p := newPolicyIndex(server, slog.New(slog.DiscardHandler))
	entry := func(effective, index uint64, writer ed25519.PublicKey) *statev1.PolicyEntry {
		return &statev1.PolicyEntry{EffectiveLamport: effective, RaftIndex: index, Rules: []*statev1.PolicyRule{
			{PathGlob: "world/**", CanWrite: [][]byte{writer}},
		}}
	}
	e1, e2, e3 := entry(10, 5, alice), entry(20, 7, bob), entry(30, 9, alice)
	p.update("r", []*statev1.PolicyEntry{e1})
	first := p.rooms["r"][0].rules[0].writers
	p.update("r", []*statev1.PolicyEntry{e1, e2})
	p.update("r", []*statev1.PolicyEntry{e1, e2, e3})
	got := p.rooms["r"]
	if len(got) != 3 || got[0].effective != 10 || got[1].effective != 20 || got[2].effective != 30 {
		t.Fatalf("compiled timeline = %+v, want entries at 10, 20, 30", got)
	}
	// The first entry was compiled once: its writers set is the same map.
	if fmt.Sprintf("%p", got[0].rules[0].writers) != fmt.Sprintf("%p", first) {
		t.Error("appending recompiled the entries already compiled")
	}
	for _, tc := range []struct {
		author  ed25519.PublicKey
		lamport uint64
		want    bool
	}{{alice, 15, true}, {bob, 15, false}, {bob, 25, true}, {alice, 25, false}, {alice, 35, true}, {bob, 35, false}} {
		if ok := p.AllowWrite("r", tc.author, tc.lamport, "world/x"); ok != tc.want {
			t.Errorf("after appends: AllowWrite at %d = %v, want %v", tc.lamport, ok, tc.want)
		}
	}

	// Not an extension: the last compiled entry (index 9) is not the
	// timeline's third entry, so the room is recompiled from scratch.
	other := entry(30, 11, bob)
	p.update("r", []*statev1.PolicyEntry{e1, e2, other})
	if ok := p.AllowWrite("r", bob, 35, "world/x"); !ok {
		t.Error("a replaced last entry was not recompiled")
	}
	// Shorter than what is compiled: recompiled too.
	p.update("r", []*statev1.PolicyEntry{e1})
	if n := len(p.rooms["r"]); n != 1 {
		t.Fatalf("after a shorter timeline the room has %d compiled entries, want 1", n)
	}
	if ok := p.AllowWrite("r", bob, 35, "world/x"); ok {
		t.Error("entries gone from the timeline still decide")
	}
}

// TestPolicyIndexAppendWhileReading: ingest reads (AllowWrite) while the
// reactor appends entries; under -race this checks that appending in place
// never touches what a reader holds, and every answer is one a prefix of
// the timeline gives.
func TestPolicyIndexAppendWhileReading(t *testing.T) {
	server, alice := testKey(t), testKey(t)
	p := newPolicyIndex(server, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	read := make(chan error, 1)
	go func() {
		for {
			select {
			case <-done:
				read <- nil
				return
			default:
			}
			// Every entry allows alice under world/ only; before the first
			// entry everything is allowed. The timeline only grows, so once
			// an entry was seen, chat/1 must be refused.
			if seen := len(p.snapshot("r")) > 0; seen && p.AllowWrite("r", alice, 1<<20, "chat/1") {
				read <- fmt.Errorf("a default-deny entry allowed chat/1")
				return
			}
		}
	}()
	var timeline []*statev1.PolicyEntry
	for i := range uint64(200) {
		timeline = append(timeline, &statev1.PolicyEntry{EffectiveLamport: 10 * (i + 1), RaftIndex: i + 1, Rules: []*statev1.PolicyRule{
			{PathGlob: "world/**", CanWrite: [][]byte{alice}},
		}})
		p.update("r", timeline)
	}
	close(done)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if n := len(p.snapshot("r")); n != 200 {
		t.Fatalf("compiled %d entries, want 200", n)
	}
}

// snapshot answers the compiled timeline of room, as a reader sees it.
func (p *policyIndex) snapshot(room string) []compiledEntry {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.rooms[room]
}
