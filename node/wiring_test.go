package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nodalmerge/nodalmerge-go/client"
	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// TestMetricsExpositionHasEverySPECName scrapes a running node and parses
// the exposition: every metric SPEC section 5 names is there before first
// use, with its known label values at zero.
func TestMetricsExpositionHasEverySPECName(t *testing.T) {
	n := startNode(t, testConfig(t.TempDir()))
	resp, err := http.Get("http://" + n.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	for _, name := range []string{
		"nodalmerge_rooms_total", "nodalmerge_peers_total", "nodalmerge_nodes_accepted_total",
		"nodalmerge_merge_batch_seconds", "nodalmerge_broadcast_lagged_total", "nodalmerge_ws_send_timeout_total",
		"nodalmerge_rate_limit_drops_total", "nodalmerge_lamport_rejected_total",
		"nodalmerge_token_expired_disconnects_total", "nodalmerge_controlplane_requests_total",
		"nodalmerge_auth_failures_total", "nodalmerge_raft_leader", "nodalmerge_raft_applied_index",
		"nodalmerge_keyring_rotations_total",
	} {
		if _, ok := families[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	rot := families["nodalmerge_keyring_rotations_total"]
	if rot == nil || len(rot.GetMetric()) != 2 {
		t.Errorf("keyring rotations counter is not pre-seeded for both purposes: %v", rot)
	}
}

// TestWebSocketCommandGetsTheDenyString: a control command over WebSocket
// from a session without a token is answered with SPEC section 4's exact
// deny string, and the socket stays open.
func TestWebSocketCommandGetsTheDenyString(t *testing.T) {
	n := startNode(t, testConfig(t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key, err := client.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, "ws://"+n.PublicAddr()+"/ws/cmd-room", client.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendRaw(ctx, []byte(`{"type":"get-policy"}`)); err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Type, Msg string }
	if err := json.Unmarshal(m.Raw, &e); err != nil || e.Type != "error" ||
		e.Msg != "reject.control_plane_forbidden: command=get-policy requires=policy.admin" {
		t.Fatalf("answer %s, want the deny string", m.Raw)
	}
	if err := c.SendRaw(ctx, []byte(`{"type":"request","known":[]}`)); err != nil {
		t.Fatalf("socket closed after a deny: %v", err)
	}
}

// TestTickWritesWorldFromIntent: start-tick through the admin API makes
// the leader's runner copy a room's intent/ keys to world/ as one node
// signed by the server, relayed to the room's sessions.
func TestTickWritesWorldFromIntent(t *testing.T) {
	n := startNode(t, testConfig(t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := os.ReadFile(n.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	actx := withToken(ctx, strings.TrimSpace(string(tok)))
	ticks := adminv1.NewTickServiceClient(operatorConn(t, n))
	if _, err := ticks.StartTick(actx, &adminv1.StartTickRequest{Room: "game", IntervalMs: 20}); err != nil {
		t.Fatalf("StartTick: %v", err)
	}
	list, err := ticks.ListTicks(actx, &adminv1.ListTicksRequest{})
	if err != nil || len(list.GetTicks()) != 1 || list.GetTicks()[0].GetRunner() != n.NodeID() {
		t.Fatalf("ListTicks = %v, %v; want game run by %s", list, err, n.NodeID())
	}

	key, err := client.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, "ws://"+n.PublicAddr()+"/ws/game", client.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server := c.Welcome().ServerPubkey
	author := client.NewAuthor(key)
	node, _, err := author.Write(client.Set("intent/player/7", []byte(`{"x":3}`)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendPack(ctx, nodesOf(node)); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the tick's node: %v", err)
		}
		if m.Type != "pack" {
			continue
		}
		p, err := m.AsPack()
		if err != nil {
			t.Fatal(err)
		}
		if p.From != server {
			continue
		}
		nodes, err := client.PackNodes(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range nodes {
			tx, err := decodeTx(nd.GetTransactionBytes())
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(tx.GetAuthor()) != server {
				t.Fatalf("tick node authored by %x, want the server key %s", tx.GetAuthor(), server)
			}
			for _, op := range tx.GetOps() {
				if op.GetPath() == "world/player/7" && bytes.Equal(op.GetSet().GetValue(), []byte(`{"x":3}`)) {
					return
				}
			}
		}
	}
}
