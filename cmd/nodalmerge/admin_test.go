package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/token"
)

var fakeNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	fakePeer = "ac25fcdeb9bae72e4de1b94d2ba4a67f35df9250b88c36a83cf08eaa700ca3f9"
	fakeSig  = "220da09087e8c672917523fe7572ee6c8c87c4305acc41d1da415566cb33c76df487735f35df7b1c986e828d3430d04d8c9b4400d960929bfd753a7e071da205"
)

// runSplit runs the CLI in-process and answers stdout and stderr apart.
func runSplit(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// admin runs `nodalmerge admin` against s with the token "tok-1".
func (s *adminServer) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runSplit(t, append(append([]string{"admin"}, s.args("tok-1")...), args...)...)
}

// TestAdminCommands runs every subcommand against the fake server and
// checks the request it sent, the metadata, and the human output.
func TestAdminCommands(t *testing.T) {
	t.Setenv(envToken, "")
	s := startFakeAdmin(t)
	for _, tc := range []struct {
		args    []string
		method  string
		req     proto.Message
		wantOut []string
	}{
		{[]string{"status"}, "GetStatus", &adminv1.GetStatusRequest{},
			[]string{"cluster        c-test\n", "node           n1 (leader)\n", "applied index  42\n", "commit index   43\n",
				"NODE  STATE     VOTER  DRAINING  RAFT            ADMIN           PUBLIC\n",
				"n2    follower  yes    yes       127.0.0.1:8880  127.0.0.1:8879  -\n"}},
		{[]string{"members"}, "ListMembers", &adminv1.ListMembersRequest{},
			[]string{"n1    leader    yes    no        127.0.0.1:7880  127.0.0.1:7879  127.0.0.1:7878\n"}},
		{[]string{"remove-member", "n3"}, "RemoveMember", &adminv1.RemoveMemberRequest{NodeId: "n3"},
			[]string{"removed member n3 (raft index 50)\n"}},
		{[]string{"transfer-leadership"}, "TransferLeadership", &adminv1.TransferLeadershipRequest{},
			[]string{"leader is now n2 (term 4, raft index 51)\n"}},
		{[]string{"transfer-leadership", "n1"}, "TransferLeadership", &adminv1.TransferLeadershipRequest{NodeId: "n1"},
			[]string{"leader is now n1 "}},
		{[]string{"keys", "list", "--purpose", "operator"}, "ListKeys", &adminv1.ListKeysRequest{Purpose: "operator"},
			[]string{"KID              PURPOSE   STATE   CREATED               ACTIVATES             SUPERSEDED  RETIRE AFTER  PUBLIC KEY\n",
				"op-0123456789ab  operator  active  2030-01-02T03:04:05Z  2030-01-02T03:04:05Z  -           -             ab12\n"}},
		{[]string{"keys", "retire", "op-0123456789ab"}, "RetireKey", &adminv1.RetireKeyRequest{Kid: "op-0123456789ab"},
			[]string{"retired key op-0123456789ab (raft index 52)\n"}},
		{[]string{"rooms", "list"}, "ListRooms", &adminv1.ListRoomsRequest{},
			[]string{"ROOM   MODE     LIVE  PEERS\nlobby  cluster  yes   3\nquiet  open     no    0\n"}},
		{[]string{"rooms", "describe", "lobby"}, "DescribeRoom", &adminv1.DescribeRoomRequest{Room: "lobby"},
			[]string{"mode            own-keys\n", "placement       every node\n", "nodes           1234\n",
				"rk-0123456789ab  active  2030-01-02T03:04:05Z  -             cd34\n"}},
		{[]string{"rooms", "lock", "lobby", "--mode", "own-keys"}, "LockRoom", &adminv1.LockRoomRequest{Room: "lobby", Mode: "own-keys"},
			[]string{"room lobby locked, mode own-keys (raft index 54)\n"}},
		{[]string{"rooms", "unlock", "lobby"}, "UnlockRoom", &adminv1.UnlockRoomRequest{Room: "lobby"},
			[]string{"room lobby unlocked (raft index 55)\n"}},
		{[]string{"rooms", "set-key", "lobby", "--pubkey", strings.ToUpper(fakePeer)}, "SetRoomKey",
			&adminv1.SetRoomKeyRequest{Room: "lobby", Pubkey: fakePeer},
			[]string{"room lobby trusts key rk-fedcba987654 (raft index 56)\n"}},
		{[]string{"rooms", "rotate-key", "lobby", "--pubkey", fakePeer, "--grace", "90m", "--kid", "k2"}, "RotateRoomKey",
			&adminv1.RotateRoomKeyRequest{Room: "lobby", Pubkey: fakePeer, Kid: "k2", Grace: durationOf(90 * time.Minute)},
			[]string{"room lobby rotated to key rk-aaaaaaaaaaaa (raft index 57)\n"}},
		{[]string{"policy", "get", "lobby"}, "GetPolicy", &adminv1.GetPolicyRequest{Room: "lobby"},
			[]string{"room lobby: default deny\n", "world/**   " + fakePeer + "\n", "admin/**   (nobody)\n",
				"EFFECTIVE LAMPORT  DEFAULT  RULES  SET AT\n7                  deny     2      2030-01-02T03:04:05Z\n"}},
		{[]string{"policy", "set", "lobby", "--default", "deny", "--rule", "world/**=" + fakePeer + "," + fakePeer, "--rule", "a=b/**="},
			"SetPolicy", &adminv1.SetPolicyRequest{Room: "lobby", Default: "deny", Rules: []*adminv1.PolicyRule{
				{PathGlob: "world/**", CanWrite: []string{fakePeer, fakePeer}}, {PathGlob: "a=b/**"}}},
			[]string{"policy of room lobby set, effective from lamport 8 (raft index 58)\n"}},
		{[]string{"revoke", "--token-id", "5f0c3e9a1b2d4c6e8f0a1b2c3d4e5f60"}, "Revoke",
			&adminv1.RevokeRequest{TokenId: "5f0c3e9a1b2d4c6e8f0a1b2c3d4e5f60"},
			[]string{"revoked token 5f0c3e9a1b2d4c6e8f0a1b2c3d4e5f60 (raft index 53)\n"}},
		{[]string{"revoke", "--room", "lobby", "--peer-pubkey", fakePeer, "--until", "2031-01-01T00:00:00Z"}, "Revoke",
			&adminv1.RevokeRequest{Room: "lobby", PeerPubkey: fakePeer, Until: timestampOf(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))},
			[]string{"revoked peer " + fakePeer + " in room lobby until 2031-01-01T00:00:00Z (raft index 53)\n"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, err := s.run(t, tc.args...)
			if err != nil {
				t.Fatalf("%v\nstderr: %s", err, errOut)
			}
			c := s.last(t)
			if c.method != tc.method || !proto.Equal(c.req, tc.req) {
				t.Fatalf("server saw %s %v, want %s %v", c.method, c.req, tc.method, tc.req)
			}
			if got := c.md.Get("authorization"); len(got) != 1 || got[0] != "Bearer tok-1" {
				t.Fatalf("authorization metadata %q", got)
			}
			if got := c.md.Get(mdConsistency); len(got) != 0 {
				t.Fatalf("consistency metadata %q without --stale", got)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestAdminJSONAndStale: --json prints protojson that decodes to exactly
// what the server answered; --stale marks reads and is refused on writes.
func TestAdminJSONAndStale(t *testing.T) {
	t.Setenv(envToken, "")
	s := startFakeAdmin(t)
	out, _, err := s.run(t, "--json", "--stale", "status")
	if err != nil {
		t.Fatal(err)
	}
	var got adminv1.GetStatusResponse
	if err := protojson.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json output is not protojson: %v\n%s", err, out)
	}
	want := &adminv1.GetStatusResponse{ClusterId: "c-test", NodeId: "n1", LeaderId: "n1", Term: 3, AppliedIndex: 42,
		CommitIndex: 43, State: "leader", Members: fakeMembers}
	if !proto.Equal(&got, want) {
		t.Fatalf("--json decoded to %v", &got)
	}
	if md := s.last(t).md.Get(mdConsistency); len(md) != 1 || md[0] != "stale" {
		t.Fatalf("--stale sent %q", md)
	}
	// --admin-addr is accepted for --admin, before or after the subcommand.
	for _, args := range [][]string{
		{"admin", "--admin-addr", s.addr, "--tls-ca", s.caFile, "--tls-cert", s.certFile, "--tls-key", s.keyF, "--token", "t", "members"},
		{"admin", "members", "--admin-addr", s.addr, "--tls-ca", s.caFile, "--tls-cert", s.certFile, "--tls-key", s.keyF, "--token", "t"},
	} {
		if _, _, err := runSplit(t, args...); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
	}
	if !strings.Contains(out, `"draining": false`) {
		t.Errorf("--json omits unset fields:\n%s", out)
	}

	before := s.count()
	_, _, err = s.run(t, "--stale", "rooms", "unlock", "lobby")
	if err == nil || !strings.Contains(err.Error(), "--stale: only reads") {
		t.Fatalf("--stale on a write: %v", err)
	}
	if s.count() != before {
		t.Fatal("a refused --stale write reached the server")
	}
}

// TestAdminErrors: a refused call prints "CODE: message" exactly; a node
// that is not there is UNAVAILABLE within --timeout.
func TestAdminErrors(t *testing.T) {
	t.Setenv(envToken, "")
	s := startFakeAdmin(t)
	out, _, err := s.run(t, "keys", "rotate", "--purpose", "room-token", "--prepublish", "10m", "--grace", "48h")
	const want = "PERMISSION_DENIED: reject.control_plane_forbidden: command=keys.rotate requires=cluster.admin"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	if out != "" {
		t.Errorf("stdout on failure: %q", out)
	}
	if r, ok := s.last(t).req.(*adminv1.RotateKeyRequest); !ok || r.GetPurpose() != "room-token" ||
		r.GetPrepublish().AsDuration() != 10*time.Minute || r.GetGrace().AsDuration() != 48*time.Hour {
		t.Fatalf("rotate request %v", s.last(t).req)
	}

	args := append([]string{"admin"}, s.args("tok-1")...)
	args[2] = "127.0.0.1:1" // --admin: nothing listens there
	start := time.Now()
	_, _, err = runSplit(t, append(args, "--timeout", "3s", "members")...)
	if err == nil || !strings.HasPrefix(err.Error(), "UNAVAILABLE: ") && !strings.HasPrefix(err.Error(), "DEADLINE_EXCEEDED: ") {
		t.Fatalf("unreachable node: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("--timeout not honoured")
	}
}

// TestAdminValidation: bad arguments are refused by name before any call.
func TestAdminValidation(t *testing.T) {
	t.Setenv(envToken, "")
	s := startFakeAdmin(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "list", "--purpose", "signing"}, `--purpose "signing": want room-token or operator`},
		{[]string{"keys", "rotate"}, `required flag(s) "purpose" not set`},
		{[]string{"keys", "rotate", "--purpose", "operator", "--grace", "0s"}, "--grace 0s: must be positive"},
		{[]string{"keys", "rotate", "--purpose", "operator", "--prepublish", "-1s"}, "--prepublish -1s: must not be negative"},
		{[]string{"rooms", "lock", "lobby", "--mode", "open"}, `--mode "open": want cluster or own-keys`},
		{[]string{"rooms", "describe", "a/b"}, `room "a/b": invalid room name`},
		{[]string{"rooms", "set-key", "lobby", "--pubkey", "abc"}, "--pubkey: \"abc\" is not 64 hex characters"},
		{[]string{"policy", "set", "lobby", "--default", "maybe"}, `--default "maybe": want allow or deny`},
		{[]string{"policy", "set", "lobby", "--default", "allow", "--rule", "world/**"}, `--rule "world/**": want GLOB=HEX`},
		{[]string{"policy", "set", "lobby", "--default", "allow", "--rule", "w=zz"}, `--rule "w=zz": "zz" is not 64 hex`},
		{[]string{"revoke"}, "give --token-id, or --room with --peer-pubkey"},
		{[]string{"revoke", "--token-id", "x", "--peer-pubkey", fakePeer}, "give one, not both"},
		{[]string{"revoke", "--peer-pubkey", fakePeer}, "--peer-pubkey needs --room"},
		{[]string{"revoke", "--token-id", "x", "--until", "2001-01-01T00:00:00Z"}, "is in the past"},
		{[]string{"revoke", "--token-id", "x", "--until", "soon"}, `--until "soon": want an RFC 3339 time`},
		{[]string{"token", "mint-room", "--room", "lobby", "--peer-pubkey", fakePeer, "--caps", "read:"}, "--caps: cap 0 is a path grant without a glob"},
		{[]string{"token", "mint-room", "--room", "lobby", "--peer-pubkey", fakePeer, "--caps", "a,a"}, "--caps: cap 1 (a) is listed twice"},
		{[]string{"token", "mint-room", "--room", "lobby", "--peer-pubkey", fakePeer, "--ttl", "-1h"}, "--ttl -1h0m0s: must be positive"},
		{[]string{"token", "mint-operator", "--subject", "s", "--caps", "cluster.read", "--ttl", "0s"}, "--ttl 0s: must be positive"},
		{[]string{"remove-member"}, "accepts 1 arg(s), received 0"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			before := s.count()
			_, _, err := s.run(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if s.count() != before {
				t.Fatal("an invalid command reached the server")
			}
		})
	}
}

// TestAdminMintRoom: stdout is exactly the hello.token object, with
// expiry a JSON number even above 2^53, and it parses as a room token.
func TestAdminMintRoom(t *testing.T) {
	t.Setenv(envToken, "")
	s := startFakeAdmin(t)
	out, errOut, err := s.run(t, "token", "mint-room", "--room", "lobby", "--peer-pubkey", fakePeer,
		"--caps", "room.admin,read:world/**", "--ttl", "2h")
	if err != nil {
		t.Fatal(err)
	}
	req := s.last(t).req.(*adminv1.MintRoomTokenRequest)
	if req.GetRoom() != "lobby" || req.GetPeerPubkey() != fakePeer || len(req.GetCaps()) != 2 || req.GetTtl().AsDuration() != 2*time.Hour {
		t.Fatalf("request %v", req)
	}
	want := `{"peer_pubkey":"` + fakePeer + `","expiry":9007199254740993,"caps":["room.admin","read:world/**"],"sig":"` + fakeSig + `","kid":"rt-0123456789ab"}` + "\n"
	if out != want {
		t.Fatalf("stdout\n got %s\nwant %s", out, want)
	}
	tok, err := token.ParseRoomToken(json.RawMessage(out))
	if err != nil || tok.Expiry != 1<<53+1 {
		t.Fatalf("ParseRoomToken: %+v, %v", tok, err)
	}
	if !strings.Contains(errOut, "room token 5f0c3e9a1b2d4c6e8f0a1b2c3d4e5f60 for room lobby, key rt-0123456789ab, expires 2030-01-02T03:04:05Z") {
		t.Errorf("stderr %q", errOut)
	}

	out, _, err = s.run(t, "--json", "token", "mint-room", "--room", "lobby", "--peer-pubkey", fakePeer)
	if err != nil {
		t.Fatal(err)
	}
	var resp adminv1.MintRoomTokenResponse
	if err := protojson.Unmarshal([]byte(out), &resp); err != nil || resp.GetTokenId() == "" {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if s.last(t).req.(*adminv1.MintRoomTokenRequest).GetTtl() != nil {
		t.Error("ttl sent although --ttl was not given (the server's default must apply)")
	}
}

// TestAdminMintOperator: only the JWT on stdout; the same through
// `token operator`, which keeps its historic error form.
func TestAdminMintOperator(t *testing.T) {
	t.Setenv(envToken, "")
	s := startFakeAdmin(t)
	out, errOut, err := s.run(t, "token", "mint-operator", "--subject", "dash", "--caps", "cluster.read", "--rooms", "team-*", "--ttl", "8h")
	if err != nil {
		t.Fatal(err)
	}
	if out != "aGVhZA.Ym9keQ.c2ln\n" || strings.Contains(errOut, "aGVhZA") ||
		!strings.Contains(errOut, "operator token 0123456789abcdef0123456789abcdef for dash, expires ") {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
	want := &adminv1.MintOperatorTokenRequest{Subject: "dash", Caps: []string{"cluster.read"}, Rooms: []string{"team-*"}, Ttl: durationOf(8 * time.Hour)}
	if got := s.last(t).req; !proto.Equal(got, want) {
		t.Fatalf("request %v", got)
	}

	out, _, err = runSplit(t, append(append([]string{"token", "operator"}, s.args("tok-2")...), "--subject", "x", "--caps", "room.admin")...)
	if err != nil || out != "aGVhZA.Ym9keQ.c2ln\n" {
		t.Fatalf("token operator: %q, %v", out, err)
	}
	if got := s.last(t); got.md.Get("authorization")[0] != "Bearer tok-2" || got.req.(*adminv1.MintOperatorTokenRequest).GetTtl() != nil {
		t.Fatalf("token operator call %v %v", got.md, got.req)
	}
}
