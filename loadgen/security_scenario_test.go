package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nodalmerge/nodalmerge-go/client"
	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/pki"
)

// These tests need a server with locked-room admission (hello.token
// checked against the room's own keys) and revocation that closes
// sessions with 4003 on every node.

func (s adminServer) target() AdminTarget {
	return AdminTarget{Addrs: []string{s.addr}, TLS: s.tls, Token: s.token}
}

// checkLocked checks, through the admin API and a real hello, that room
// is locked to the room key kid.
func checkLocked(t *testing.T, s adminServer, room, kid string) {
	t.Helper()
	desc, err := adminv1.NewRoomServiceClient(s.client(t)).DescribeRoom(s.ctx(t), &adminv1.DescribeRoomRequest{Room: room})
	if err != nil {
		t.Fatalf("describe-room %s: %v", room, err)
	}
	if desc.GetMode() != lockModeOwnKeys || len(desc.GetKeys()) != 1 || desc.GetKeys()[0].GetKid() != kid {
		t.Fatalf("room %s: mode %q, keys %v; want own-keys with %s", room, desc.GetMode(), desc.GetKeys(), kid)
	}
	key, err := client.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := client.Dial(testCtx(t), s.ws+"/ws/"+room, client.Options{Key: key})
	var he *client.HelloError
	if !errors.As(err, &he) || he.Msg != lockedRoomRefusal {
		if conn != nil {
			_ = conn.Close()
		}
		t.Fatalf("hello without a token to %s: %v, want %q", room, err, lockedRoomRefusal)
	}
	if code, _, ok := client.CloseError(he.Err); !ok || code != 1008 {
		t.Errorf("refusal closed with %v, want 1008", he.Err)
	}
}

func TestJoinstormLocked(t *testing.T) {
	s := startAdminServer(t)
	seed := strings.Repeat("2a", 32)
	key, err := parseRoomKeySeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultJoinstormConfig()
	cfg.URL, cfg.ServerPID = s.ws, s.pid
	cfg.Rooms, cfg.Concurrency, cfg.Duration = 2, 4, 500*time.Millisecond
	cfg.Locked, cfg.Admin, cfg.RoomKeySeed = true, s.target(), seed
	res, err := RunJoinstorm(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Handshakes == 0 || res.Failures != 0 || len(res.Errors) > 0 || res.Failed() {
		t.Fatalf("handshakes %d failures %d errors %v", res.Handshakes, res.Failures, res.Errors)
	}
	if !res.Config.Locked || res.Config.RoomKeyID != key.kid || res.PresignSeconds <= 0 {
		t.Fatalf("config %+v presign %.3f s", res.Config, res.PresignSeconds)
	}
	checkLatency(t, "handshake", res.Latency)
	checkJSON(t, res, "scenario", "handshakes_per_sec", "latency", "presign_seconds")
	if !strings.Contains(string(mustJSON(t, res)), `"room_key_id":"`+key.kid+`"`) || strings.Contains(string(mustJSON(t, res)), seed) {
		t.Error("the report lacks the kid or carries the seed")
	}
	for i := range 2 {
		checkLocked(t, s, fmt.Sprintf("%s-room%d", res.Config.RoomPrefix, i), key.kid)
	}

	t.Run("open room is not locked", func(t *testing.T) {
		err := awaitLocked(testCtx(t), s.ws+"/ws/"+res.Config.RoomPrefix+"-never-locked", 300*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "still admits a hello without a token") {
			t.Fatalf("error %v", err)
		}
	})

	t.Run("hold", func(t *testing.T) {
		cfg := cfg
		cfg.RoomKeySeed = "" // a fresh key
		cfg.Hold, cfg.MaxConnections, cfg.Duration = true, 12, 20*time.Second
		start := time.Now()
		res, err := RunJoinstorm(testCtx(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Held != 12 || res.Handshakes != 12 || res.Failures != 0 || time.Since(start) > 15*time.Second {
			t.Fatalf("held %d handshakes %d failures %d errors %v", res.Held, res.Handshakes, res.Failures, res.Errors)
		}
		if res.Config.RoomKeyID == key.kid {
			t.Error("no seed, yet the seeded key")
		}
	})

	t.Run("refused", func(t *testing.T) {
		// A token without room.admin cannot lock: the run fails before
		// any dial, with the server's reason.
		cfg := cfg
		cfg.Admin.Token = mintOperatorToken(t, s, "policy.admin")
		_, err := RunJoinstorm(testCtx(t), cfg)
		if err == nil || !strings.Contains(err.Error(), "set-room-key on room") || !strings.Contains(err.Error(), "PERMISSION_DENIED") {
			t.Fatalf("error %v", err)
		}
		if strings.Contains(err.Error(), cfg.Admin.Token) {
			t.Error("the error carries the token")
		}
	})
}

func TestRevokeOneNode(t *testing.T) {
	s := startAdminServer(t)
	for _, c := range []struct {
		by              RevokeBy
		sessions, peers int
	}{
		{RevokeByToken, 10, 1},
		{RevokeByPeer, 12, 3},
	} {
		t.Run(string(c.by), func(t *testing.T) {
			cfg := DefaultRevokeConfig()
			// Two URLs of one node: the per-URL split is exercised, the
			// cluster test below spreads over real nodes.
			cfg.URLs, cfg.Admin = []string{s.ws, s.ws}, s.target()
			cfg.Sessions, cfg.Peers, cfg.By, cfg.Rounds = c.sessions, c.peers, c.by, 2
			cfg.CloseTimeout = 5 * time.Second
			res, err := RunRevoke(testCtx(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			perRound := (c.sessions + c.peers - 1) / c.peers // peer 0 has the most
			checkRevoke(t, res, 2, perRound, c.sessions-perRound)
			if res.Config.By != c.by || res.Config.Peers != c.peers {
				t.Errorf("config %+v", res.Config)
			}
		})
	}
}

// checkRevoke checks a run of rounds where each round revoked revoked
// sessions and kept bystanders.
func checkRevoke(t *testing.T, res *RevokeResult, rounds, revoked, bystanders int) {
	t.Helper()
	if res.Failed() || len(res.Errors) > 0 {
		t.Fatalf("errors %v, rounds %+v", res.Errors, res.Rounds)
	}
	if len(res.Rounds) != rounds || res.Revoked != rounds*revoked || res.Closed != res.Revoked {
		t.Fatalf("rounds %+v, revoked %d closed %d", res.Rounds, res.Revoked, res.Closed)
	}
	rooms := map[string]bool{}
	for _, rr := range res.Rounds {
		if rr.Revoked != revoked || rr.Closed != revoked || rr.NotClosed+rr.WrongClose != 0 || rr.Bystanders != bystanders || rr.BystandersLost != 0 {
			t.Errorf("round %+v", rr)
		}
		if rr.LastCloseMs <= 0 || rr.RevokeCallMs <= 0 {
			t.Errorf("round %d: last close %.3f ms, call %.3f ms", rr.Round, rr.LastCloseMs, rr.RevokeCallMs)
		}
		rooms[rr.Room] = true
	}
	if len(rooms) != rounds {
		t.Errorf("rounds shared rooms: %v", rooms)
	}
	checkLatency(t, "revoke → close", res.Latency)
	checkLatency(t, "revoke → last close", res.LastClose)
	checkLatency(t, "revoke call", res.RevokeCall)
	if res.Latency.Count != uint64(res.Closed) || res.LastClose.Count != uint64(rounds) || res.LastClose.MaxMs != res.Latency.MaxMs {
		t.Errorf("latency %+v, last close %+v", res.Latency, res.LastClose)
	}
	var perNode uint64
	for _, n := range res.PerNode {
		if n.Latency.Count == 0 {
			t.Errorf("no revoked session on %s", n.URL)
		}
		perNode += n.Latency.Count
	}
	if perNode != res.Latency.Count {
		t.Errorf("per node %d samples, overall %d", perNode, res.Latency.Count)
	}
	checkJSON(t, res, "scenario", "latency", "last_close", "revoke_call", "per_node", "rounds")
}

// TestRevokeCluster runs the scenario as the report does: three nodes,
// sessions spread over all of them, the revocation called on a follower.
func TestRevokeCluster(t *testing.T) {
	nodes, admin := startCluster(t, 3)
	cfg := DefaultRevokeConfig()
	cfg.URLs = []string{nodes[0].ws, nodes[1].ws, nodes[2].ws}
	cfg.Admin = admin
	cfg.Admin.Addrs = []string{nodes[1].admin} // a follower forwards to the leader
	cfg.Sessions, cfg.Rounds, cfg.CloseTimeout = 30, 2, 5*time.Second
	res, err := RunRevoke(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkRevoke(t, res, 2, 30, 0)
	for _, n := range res.PerNode {
		if n.Latency.Count != 20 {
			t.Errorf("%s: %d revoked sessions, want 10 per round", n.URL, n.Latency.Count)
		}
	}
}

// startCluster starts n nodes with certificates from `nodalmerge cert`:
// node 1 bootstraps, the others join it. It answers the nodes and an
// operator's admin target (the bootstrap token; Addrs is node 1).
func startCluster(t *testing.T, n int) ([]nodeBanner, AdminTarget) {
	t.Helper()
	dir := t.TempDir()
	cli := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(server.bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("nodalmerge %v: %v\n%s", args, err, out)
		}
	}
	ca := filepath.Join(dir, "ca")
	cli("cert", "create-ca", "--dir", ca)
	cli("cert", "create-client", "--ca-dir", ca, "--dir", filepath.Join(dir, "ops"), "--name", "bench")
	ops, err := pki.Load(filepath.Join(ca, "ca.pem"), filepath.Join(dir, "ops", "bench.pem"), filepath.Join(dir, "ops", "bench-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var nodes []nodeBanner
	for k := 1; k <= n; k++ {
		id := fmt.Sprintf("n%d", k)
		certs := filepath.Join(dir, id)
		cli("cert", "create-node", "--ca-dir", ca, "--dir", certs, "--node-id", id, "--hosts", "127.0.0.1")
		args := []string{"--store", filepath.Join(dir, id+"-store"), "--node-id", id,
			"--tls-ca", filepath.Join(certs, "ca.pem"), "--tls-cert", filepath.Join(certs, "node.pem"), "--tls-key", filepath.Join(certs, "node-key.pem")}
		if k == 1 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", nodes[0].admin)
		}
		nodes = append(nodes, launchNode(t, dir, args...))
	}
	tok, err := os.ReadFile(filepath.Join(nodes[0].state, "bootstrap-operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	return nodes, AdminTarget{Addrs: []string{nodes[0].admin}, TLS: ops.ClientConfig(""), Token: strings.TrimSpace(string(tok))}
}

// mintOperatorToken mints a ten-minute operator token holding caps.
func mintOperatorToken(t *testing.T, s adminServer, caps ...string) string {
	t.Helper()
	mint, err := adminv1.NewTokenServiceClient(s.client(t)).MintOperatorToken(s.ctx(t), &adminv1.MintOperatorTokenRequest{
		Subject: "bench-limited", Caps: caps, Ttl: durationpb.New(10 * time.Minute)})
	if err != nil {
		t.Fatalf("MintOperatorToken: %v", err)
	}
	return mint.GetToken()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
