package node

import (
	"crypto/ed25519"
	"crypto/rand"
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
