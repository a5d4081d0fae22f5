package controlplane

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/nodalmerge/nodalmerge-go/token"
)

// matrixRoom is the room every room-scoped request of the matrix names.
const matrixRoom = "r1"

// allCapabilities answers every capability the registry requires, except
// cluster.node, which no token can carry.
func allCapabilities(r *Registry) []string {
	var caps []string
	for _, c := range r.All() {
		if c.Capability != token.CapClusterNode && !slices.Contains(caps, c.Capability) {
			caps = append(caps, c.Capability)
		}
	}
	return caps
}

func without(caps []string, c string) []string {
	return slices.DeleteFunc(slices.Clone(caps), func(x string) bool { return x == c })
}

// specSection4 is SPEC section 4's capability table spelled out: every
// command it names with its capability. Both matrices must exercise each
// of them (the registry is what they iterate, so this catches a command
// the protos lost).
var specSection4 = map[string]string{
	"set-policy": "policy.admin", "get-policy": "policy.admin",
	"set-room-key": "room.admin", "rotate-room-key": "room.admin", "lock-room": "room.admin", "unlock-room": "room.admin",
	"evict-peer": "room.admin", "compact-room": "room.admin", "list-rooms": "room.admin", "describe-room": "room.admin",
	"start-tick": "tick.admin", "stop-tick": "tick.admin",
	"archive.describe": "archive.read",
	"archive.validate": "archive.admin", "archive.import": "archive.admin", "archive.export": "archive.admin",
	"projection.read": "query.read", "projection.list": "query.read", "replay.read-range": "query.read",
	"query.register": "query.admin", "projection.build": "query.admin", "projection.invalidate": "query.admin",
	"graph.get-frontier": "query.admin", "graph.get-causal-parents": "query.admin", "graph.compute-sync-diff": "query.admin",
	"topology.create-child": "topology.admin", "topology.describe-lineage": "topology.admin",
	"topology.list-children": "topology.admin", "topology.propose-promotion": "topology.admin",
	"topology.validate-promotion": "topology.admin", "topology.apply-promotion": "topology.admin",
	"topology.place-room": "topology.admin", "topology.drain-node": "topology.admin",
	"token.mint-room": "token.mint", "token.revoke": "token.mint",
	"cluster.status": "cluster.read", "cluster.list-members": "cluster.read", "keys.list": "cluster.read", "audit.list": "cluster.read",
	"cluster.remove-member": "cluster.admin", "cluster.transfer-leadership": "cluster.admin", "cluster.snapshot": "cluster.admin",
	"keys.rotate": "cluster.admin", "keys.retire": "cluster.admin", "token.mint-operator": "cluster.admin",
	"cluster.join": "cluster.node",
}

// checkSpecCovered fails unless every SPEC section 4 command was run with
// the table's capability.
func checkSpecCovered(t *testing.T, ran map[string]string) {
	t.Helper()
	for name, capability := range specSection4 {
		if got, ok := ran[name]; !ok || got != capability {
			t.Errorf("SPEC command %s (requires %s) was not run by the matrix (ran with %q)", name, capability, got)
		}
	}
}

// wantAnswer fails when a capable caller's gRPC answer is not a deliberate
// one: a response, or a status with a code the handler chose and a
// message. Internal and Unknown would mean a failure no one handled.
func wantAnswer(t *testing.T, cmd string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	st := status.Convert(err)
	if st.Code() == codes.Internal || st.Code() == codes.Unknown || st.Message() == "" {
		t.Fatalf("%s answered a capable caller %v %q; want a result or a deliberate error", cmd, st.Code(), st.Message())
	}
}

// matrixRequest is an empty request of cmd naming matrixRoom when scoped.
func matrixRequest(t *testing.T, r *Registry, cmd Command) proto.Message {
	t.Helper()
	req, err := r.newRequest(cmd.FullMethod)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.RoomScoped {
		setRoom(req, matrixRoom)
	}
	return req
}

// TestAllowDenyMatrixGRPC runs every registered command, built from the
// registry so a new command cannot be missed, with a token holding every
// capability but the one required (exact deny and ErrorInfo, whatever the
// payload) and with one holding just that capability (never denied).
func TestAllowDenyMatrixGRPC(t *testing.T) {
	e := newEnv(t, envOptions{dataPlane: &fakeDataPlane{}})
	reg := e.srv.Registry()
	all := allCapabilities(reg)
	op := e.dial(t, e.pki.Operator(t, "alice"))
	node := e.dial(t, e.pki.Node(t, "n1"))
	if len(reg.All()) < len(specSection4) {
		t.Fatalf("registry holds %d commands; SPEC section 4 names %d", len(reg.All()), len(specSection4))
	}
	ran := map[string]string{}
	for _, cmd := range reg.All() {
		ran[cmd.Name] = cmd.Capability
		t.Run(cmd.Name, func(t *testing.T) {
			req := matrixRequest(t, reg, cmd)
			resp, _ := reg.newResponse(cmd.FullMethod)

			denied := bearer(callCtx(t), e.mint(t, e.operatorClaims(without(all, cmd.Capability)...)))
			wantDeny(t, op.Invoke(denied, cmd.FullMethod, req, resp), cmd.Name, cmd.Capability)
			if ev := e.audit.take(); len(ev) != 1 || ev[0].Decision != DecisionDeny || ev[0].Command != cmd.Name || ev[0].Requires != cmd.Capability {
				t.Fatalf("deny audit = %+v", ev)
			}

			conn, ctx := node, callCtx(t)
			if cmd.Capability != token.CapClusterNode {
				conn, ctx = op, bearer(callCtx(t), e.mint(t, e.operatorClaims(cmd.Capability)))
			}
			err := conn.Invoke(ctx, cmd.FullMethod, req, resp)
			if st := status.Convert(err); st.Code() == codes.PermissionDenied && strings.HasPrefix(st.Message(), "reject.control_plane_forbidden") {
				t.Fatalf("holder of %s was denied: %v", cmd.Capability, err)
			}
			wantAnswer(t, cmd.Name, err)
			ev := e.audit.take()
			if len(ev) != 1 || ev[0].Decision != DecisionAllow || ev[0].Transport != TransportGRPC {
				t.Fatalf("allow audit = %+v", ev)
			}
		})
	}
	checkSpecCovered(t, ran)
}

// wsGRPCOnly is SPEC section 4's list of commands kept off the WebSocket
// door, plus list-ticks (not room-scoped).
var wsGRPCOnly = []string{
	"list-rooms", "list-ticks", "topology.place-room", "topology.drain-node", "token.mint-operator",
	"cluster.status", "cluster.list-members", "cluster.join", "cluster.remove-member",
	"cluster.transfer-leadership", "cluster.snapshot", "keys.list", "keys.rotate", "keys.retire", "audit.list",
}

// wsFrame decodes a frame into its fields.
func wsFrame(t *testing.T, frame []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(frame, &m); err != nil {
		t.Fatalf("frame %s is not a JSON object: %v", frame, err)
	}
	return m
}

// TestAllowDenyMatrixWebSocket is the matrix on the WebSocket door: the
// same decision from the session's room-token caps, the SPEC's exact deny
// frame, and the gRPC-only commands refused with an answer.
func TestAllowDenyMatrixWebSocket(t *testing.T) {
	e := newEnv(t, envOptions{dataPlane: &fakeDataPlane{live: map[string]int{matrixRoom: 1}}})
	d := NewDispatcher(e.srv)
	reg := e.srv.Registry()
	all := allCapabilities(reg)
	served := 0
	ran := map[string]string{}
	for _, cmd := range reg.All() {
		ran[cmd.Name] = cmd.Capability
		t.Run(cmd.Name, func(t *testing.T) {
			call := WSCall{Room: matrixRoom, Command: cmd.Name, Payload: []byte(`{"type":"` + cmd.Name + `"}`), Pubkey: strings.Repeat("ab", 32)}
			if slices.Contains(wsGRPCOnly, cmd.Name) {
				if d.Has(cmd.Name) {
					t.Fatalf("Has(%s) = true for a gRPC-only command", cmd.Name)
				}
				call.Caps = all
				f := wsFrame(t, d.Call(callCtx(t), call))
				if f["type"] != "error" || f["msg"] != cmd.Name+" is not available over WebSocket: use the gRPC admin API" {
					t.Fatalf("gRPC-only frame = %v", f)
				}
				if ev := e.audit.take(); len(ev) != 1 || ev[0].Decision != DecisionDeny || ev[0].Transport != TransportWebSocket {
					t.Fatalf("audit = %+v", ev)
				}
				return
			}
			served++
			if !d.Has(cmd.Name) {
				t.Fatalf("Has(%s) = false", cmd.Name)
			}
			call.Caps = append(without(all, cmd.Capability), "write:world/**")
			frame := d.Call(callCtx(t), call)
			want := `{"type":"error","msg":"reject.control_plane_forbidden: command=` + cmd.Name + ` requires=` + cmd.Capability + `"}`
			if string(frame) != want {
				t.Fatalf("deny frame = %s\nwant %s", frame, want)
			}
			ev := e.audit.take()
			if len(ev) != 1 || ev[0].Decision != DecisionDeny || ev[0].Actor != call.Pubkey || ev[0].Room != matrixRoom ||
				ev[0].Transport != TransportWebSocket || ev[0].Reason != reasonMissingCapability {
				t.Fatalf("deny audit = %+v", ev)
			}

			call.Caps = []string{cmd.Capability}
			f := wsFrame(t, d.Call(callCtx(t), call))
			msg, _ := f["msg"].(string)
			if strings.HasPrefix(msg, "reject.control_plane_forbidden") {
				t.Fatalf("holder of %s was denied: %v", cmd.Capability, f)
			}
			// An answer, never silence: the command's result, or an error
			// the handler chose.
			if typ := f["type"]; typ != cmd.Name+"-result" && (typ != "error" || msg == "" || msg == "internal error") {
				t.Fatalf("holder of %s got %v; want %s-result or a deliberate error", cmd.Capability, f, cmd.Name)
			}
			if ev := e.audit.take(); len(ev) != 1 || ev[0].Decision != DecisionAllow {
				t.Fatalf("allow audit = %+v", ev)
			}
		})
	}
	if served == 0 {
		t.Fatal("the WebSocket door serves no command")
	}
	checkSpecCovered(t, ran)
	if d.Has("nope") || d.Has("") {
		t.Error("Has answered true for an unknown command")
	}
}
