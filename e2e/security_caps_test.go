package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/nodalmerge/nodalmerge-go/controlplane"
	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// specCommands is SPEC section 4's table: command → capability. The suite
// runs what the registry holds (so a new command cannot be missed); this
// table only checks that the registry holds at least the SPEC's commands
// with the SPEC's capabilities.
func specCommands() map[string]string {
	return map[string]string{
		"set-policy": "policy.admin", "get-policy": "policy.admin",
		"set-room-key": "room.admin", "rotate-room-key": "room.admin", "lock-room": "room.admin", "unlock-room": "room.admin",
		"evict-peer": "room.admin", "compact-room": "room.admin", "list-rooms": "room.admin", "describe-room": "room.admin",
		"start-tick": "tick.admin", "stop-tick": "tick.admin",
		"archive.describe": "archive.read",
		"archive.validate": "archive.admin", "archive.import": "archive.admin", "archive.export": "archive.admin",
		"projection.read": "query.read", "projection.list": "query.read", "replay.read-range": "query.read",
		"query.register": "query.admin", "projection.build": "query.admin", "projection.invalidate": "query.admin",
		"graph.get-frontier": "query.admin", "graph.get-causal-parents": "query.admin", "graph.compute-sync-diff": "query.admin",
		"topology.create-child": "topology.admin", "topology.describe-lineage": "topology.admin", "topology.list-children": "topology.admin",
		"topology.propose-promotion": "topology.admin", "topology.validate-promotion": "topology.admin", "topology.apply-promotion": "topology.admin",
		"topology.place-room": "topology.admin", "topology.drain-node": "topology.admin",
		"token.mint-room": "token.mint", "token.revoke": "token.mint",
		"cluster.status": "cluster.read", "cluster.list-members": "cluster.read", "keys.list": "cluster.read", "audit.list": "cluster.read",
		"cluster.remove-member": "cluster.admin", "cluster.transfer-leadership": "cluster.admin", "cluster.snapshot": "cluster.admin",
		"keys.rotate": "cluster.admin", "keys.retire": "cluster.admin", "token.mint-operator": "cluster.admin",
		"cluster.join": "cluster.node",
	}
}

const capClusterNode = "cluster.node"

// grpcOnlyBySpec reports the commands SPEC section 4 keeps off the
// WebSocket path.
func grpcOnlyBySpec(name string) bool {
	switch name {
	case "list-rooms", "topology.place-room", "topology.drain-node", "token.mint-operator":
		return true
	}
	return strings.HasPrefix(name, "cluster.") || strings.HasPrefix(name, "keys.") || strings.HasPrefix(name, "audit.")
}

// wsEligible: a WebSocket command acts on the session's room, so it is a
// room-scoped command the SPEC does not keep gRPC only.
func wsEligible(c controlplane.Command) bool {
	return !grpcOnlyBySpec(c.Name) && c.RoomScoped && c.Capability != capClusterNode
}

// capsOf answers the distinct capabilities of cmds, in order of first use.
func capsOf(cmds []controlplane.Command) []string {
	var out []string
	for _, c := range cmds {
		if !slices.Contains(out, c.Capability) {
			out = append(out, c.Capability)
		}
	}
	return out
}

func withoutCap(caps []string, c string) []string {
	return slices.DeleteFunc(slices.Clone(caps), func(x string) bool { return x == c })
}

// TestChecklist3_CapabilityDeniesForUnauthorizedCommands runs every
// registered command, on both doors, from a caller holding every
// capability but the one it requires (the exact deny: an error frame with
// the socket left open, or PERMISSION_DENIED with the ErrorInfo, on every
// node) and from one holding just that capability (an answer that is not
// a deny). Every deny and allow is in the audit trail of the node that
// decided it.
func TestChecklist3_CapabilityDeniesForUnauthorizedCommands(t *testing.T) {
	sc := startSecCluster(t, secOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	reg, err := controlplane.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	all := reg.All()
	for name, want := range specCommands() {
		c, ok := reg.ByName(name)
		switch {
		case !ok:
			t.Errorf("SPEC section 4 command %s is not in the registry", name)
		case c.Capability != want:
			t.Errorf("command %s requires %s in the registry, SPEC says %s", name, c.Capability, want)
		case !grpcOnlyBySpec(name) && want != capClusterNode && !c.RoomScoped:
			t.Errorf("command %s is WebSocket-eligible by the SPEC but not room-scoped", name)
		}
	}
	wsCmds := slices.DeleteFunc(slices.Clone(all), func(c controlplane.Command) bool { return !wsEligible(c) })
	wsCaps := capsOf(wsCmds)
	t.Logf("registry: %d commands, %d WebSocket-eligible over %d capabilities", len(all), len(wsCmds), len(wsCaps))

	// Audit expectations: node index → "transport command decision".
	wantAudit := make([][]string, len(sc.nodes))

	// WebSocket door. A session without a token holds no class at all.
	_, anonKey := newKey(t)
	anon := sc.mustJoin(ctx, 0, "e2e-caps-anonymous", "anonymous", anonKey, nil)
	for k, c := range wsCmds {
		m, err := anon.reply(ctx, map[string]any{"type": c.Name}, fmt.Sprintf("anon-%d", k))
		if err != nil {
			t.Fatalf("%s from a session without token: %v", c.Name, err)
		}
		wantDenyFrame(t, m, c.Name, c.Capability)
		wantAudit[0] = append(wantAudit[0], "websocket "+c.Name+" deny")
	}
	anon.alive(ctx, t)

	for k, capab := range wsCaps {
		node := k % len(sc.nodes)
		room := "e2e-caps-" + strings.ReplaceAll(capab, ".", "-")
		pub, key := newKey(t)
		lacking := sc.mustJoin(ctx, node, room, "lacks-"+capab, key,
			sc.mintRoomToken(node, room, pub, withoutCap(wsCaps, capab), 10*time.Minute).raw)
		pub2, key2 := newKey(t)
		holding := sc.mustJoin(ctx, node, room, "holds-"+capab, key2,
			sc.mintRoomToken(node, room, pub2, []string{capab}, 10*time.Minute).raw)
		for j, c := range wsCmds {
			if c.Capability != capab {
				continue
			}
			m, err := lacking.reply(ctx, map[string]any{"type": c.Name}, fmt.Sprintf("deny-%d", j))
			if err != nil {
				t.Fatalf("%s without %s on %s: %v", c.Name, capab, sc.nodes[node].id, err)
			}
			wantDenyFrame(t, m, c.Name, capab)
			wantAudit[node] = append(wantAudit[node], "websocket "+c.Name+" deny")

			m, err = holding.reply(ctx, map[string]any{"type": c.Name}, fmt.Sprintf("allow-%d", j))
			if err != nil {
				t.Fatalf("%s with %s on %s: no answer: %v", c.Name, capab, sc.nodes[node].id, err)
			}
			if e, err := m.AsError(); err == nil && strings.HasPrefix(e.Msg, "reject.control_plane_forbidden") {
				t.Errorf("%s with %s on %s was denied: %s", c.Name, capab, sc.nodes[node].id, m.Raw)
			} else if m.Type != c.Name+"-result" && m.Type != "error" {
				t.Errorf("%s with %s answered %s, want its result or an error", c.Name, capab, m.Raw)
			}
			wantAudit[node] = append(wantAudit[node], "websocket "+c.Name+" allow")
		}
		// Denied or not, both sockets are still open and served.
		lacking.alive(ctx, t)
		holding.alive(ctx, t)
	}

	// gRPC door, every registered command, denies on every node.
	tokenCaps := withoutCap(capsOf(all), capClusterNode)
	leader := sc.nodes[sc.leader()].id
	for k, capab := range capsOf(all) {
		jwt, _ := sc.mintOperator("lacks-"+strings.ReplaceAll(capab, ".", "-"), withoutCap(tokenCaps, capab), 10*time.Minute)
		conns := make([]*grpc.ClientConn, len(sc.nodes))
		for i := range sc.nodes {
			conns[i] = sc.adminConn(i, jwt)
		}
		allowNode := k % len(sc.nodes)
		var allowConn *grpc.ClientConn
		if capab == capClusterNode {
			allowConn = sc.nodeConn(allowNode, (allowNode+1)%len(sc.nodes))
		} else {
			holder, _ := sc.mintOperator("holds-"+strings.ReplaceAll(capab, ".", "-"), []string{capab}, 10*time.Minute)
			allowConn = sc.adminConn(allowNode, holder)
		}
		for _, c := range all {
			if c.Capability != capab {
				continue
			}
			for i := range sc.nodes {
				_, err := invokeCommand(ctx, t, conns[i], c, nil)
				wantGRPCDeny(t, sc.nodes[i].id, c, err)
				wantAudit[i] = append(wantAudit[i], "grpc "+c.Name+" deny")
			}
			set := func(m protoreflect.Message) {
				// Hand leadership to the leader itself rather than moving
				// it: the point is the answer, not an election.
				if c.Name == "cluster.transfer-leadership" {
					m.Set(m.Descriptor().Fields().ByName("node_id"), protoreflect.ValueOfString(leader))
				}
			}
			_, err := invokeCommand(ctx, t, allowConn, c, set)
			st := status.Convert(err)
			if st.Code() == codes.PermissionDenied && strings.HasPrefix(st.Message(), "reject.control_plane_forbidden") {
				t.Errorf("%s with %s on %s was denied: %v", c.Name, capab, sc.nodes[allowNode].id, err)
			}
			if st.Code() == codes.DeadlineExceeded || st.Code() == codes.Unauthenticated {
				t.Errorf("%s with %s on %s: %v, want an answer", c.Name, capab, sc.nodes[allowNode].id, err)
			}
			wantAudit[allowNode] = append(wantAudit[allowNode], "grpc "+c.Name+" allow")
		}
	}

	// The audit trail of each node holds every decision it made.
	for i := range sc.nodes {
		got := map[string]int{}
		for _, ev := range sc.auditEvents(i) {
			got[ev.GetTransport()+" "+ev.GetCommand()+" "+ev.GetDecision()]++
		}
		need := map[string]int{}
		for _, w := range wantAudit[i] {
			need[w]++
		}
		for w, n := range need {
			if got[w] < n {
				t.Errorf("%s audit holds %d events %q, want at least %d", sc.nodes[i].id, got[w], w, n)
			}
		}
	}
}

// invokeCommand calls c's gRPC method on cc with an empty request (naming
// the test room when the command is room-scoped), adjusted by set.
func invokeCommand(ctx context.Context, t *testing.T, cc *grpc.ClientConn, c controlplane.Command, set func(protoreflect.Message)) (proto.Message, error) {
	t.Helper()
	svc, method, ok := strings.Cut(strings.TrimPrefix(c.FullMethod, "/"), "/")
	if !ok {
		t.Fatalf("command %s has a malformed method %q", c.Name, c.FullMethod)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		t.Fatalf("command %s: %v", c.Name, err)
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
	if md == nil || md.IsStreamingClient() || md.IsStreamingServer() {
		t.Fatalf("command %s: %s is not a unary method; extend this suite", c.Name, c.FullMethod)
	}
	reqType, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	respType, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		t.Fatal(err)
	}
	req, resp := reqType.New(), respType.New().Interface()
	if c.RoomScoped {
		req.Set(req.Descriptor().Fields().ByName("room"), protoreflect.ValueOfString("e2e-caps-grpc"))
	}
	if set != nil {
		set(req)
	}
	cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	return resp, cc.Invoke(cctx, c.FullMethod, req.Interface(), resp)
}

// wantGRPCDeny checks err is SPEC section 4's gRPC deny for c.
func wantGRPCDeny(t *testing.T, node string, c controlplane.Command, err error) {
	t.Helper()
	st := status.Convert(err)
	want := c.DenyMessage()
	if st.Code() != codes.PermissionDenied || st.Message() != want {
		t.Errorf("%s on %s without %s: %v, want PERMISSION_DENIED %q", c.Name, node, c.Capability, err, want)
		return
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			md := ei.GetMetadata()
			if ei.GetReason() != "CONTROL_PLANE_FORBIDDEN" || ei.GetDomain() != "nodalmerge" || md["command"] != c.Name || md["requires"] != c.Capability || len(md) != 2 {
				t.Errorf("%s on %s: ErrorInfo %v, want CONTROL_PLANE_FORBIDDEN/nodalmerge {command:%s requires:%s}", c.Name, node, ei, c.Name, c.Capability)
			}
			return
		}
	}
	t.Errorf("%s on %s: the deny carries no ErrorInfo", c.Name, node)
}

// auditEvents reads node i's whole audit trail, page by page.
func (sc *secCluster) auditEvents(i int) []*adminv1.AuditEvent {
	sc.t.Helper()
	var out []*adminv1.AuditEvent
	req := &adminv1.ListEventsRequest{Limit: 1000}
	for {
		resp := must(sc.t, "ListEvents on "+sc.nodes[i].id, func(ctx context.Context) (*adminv1.ListEventsResponse, error) {
			return sc.audit(i).ListEvents(ctx, req)
		})
		evs := resp.GetEvents()
		// `since` is inclusive: drop what the previous page ended with.
		for len(out) > 0 && len(evs) > 0 && proto.Equal(evs[0], out[len(out)-1]) {
			evs = evs[1:]
		}
		out = append(out, evs...)
		if len(resp.GetEvents()) < int(req.Limit) || len(evs) == 0 {
			return out
		}
		req = &adminv1.ListEventsRequest{Limit: 1000, Since: out[len(out)-1].GetTime()}
	}
}
