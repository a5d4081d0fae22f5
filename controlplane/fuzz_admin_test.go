package controlplane

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// fuzzSeeds are payloads that reach deep into the handlers.
var fuzzSeeds = []string{
	`{}`, `{"type":"set-policy","default":"deny","rules":[{"path_glob":"world/**","can_write":["` + strings.Repeat("ab", 32) + `"]}]}`,
	`{"peer_pubkey":"` + strings.Repeat("cd", 32) + `","caps":["write:a/*","room.admin"],"ttl":"60s"}`,
	`{"mode":"cluster","id":1}`, `{"pubkey":"` + strings.Repeat("01", 32) + `","grace":"-1s","kid":"k"}`,
	`{"token_id":"x","until":"1970-01-01T00:00:00Z"}`, `{"interval_ms":10,"intent_prefix":"in/"}`,
	`[1,2]`, `"str"`, `{"room":5}`, `{"rules":[null]}`, `{"ttl":"99999999999999s"}`,
}

// historySeeds are payloads for the history commands over room r1.
func historySeeds(pack string, d diamond) []string {
	return []string{
		`{"room":"r1","pack":"` + pack + `"}`, `{"room":"r1","pack":"CgA="}`, `{"room":"r1","limit":2}`,
		`{"room":"r1","node_id":"` + d.merg.String() + `"}`, `{"room":"r1","known":["` + d.left.String() + `"],"limit":1}`,
		`{"room":"r1","from_lamport":"2","to_lamport":"2","limit":1,"after_id":"` + d.left.String() + `"}`,
		`{"room":"r1","from_lamport":"3","to_lamport":"1"}`,
	}
}

// projectionSeeds are payloads for query.register and projection.* over
// room r1.
var projectionSeeds = []string{
	`{"room":"r1","name":"all","path_glob":"world/**","description":"every world key"}`,
	`{"room":"r1","name":"all","min_raft_index":"1"}`, `{"room":"r1","name":"all"}`,
	`{"room":"r1","name":"all","path_prefix":"world/","limit":1,"from_path":"world/l"}`,
	`{"room":"r1","name":"x","path_glob":"a//b"}`, `{"room":"r1","name":"-x"}`,
}

// FuzzDispatcherCall feeds arbitrary frames for every registered command
// to the WebSocket door. It must answer exactly one JSON object with a
// string type, never panic (a recovered panic would answer "internal
// error", which is refused here too), and never deny a holder.
func FuzzDispatcherCall(f *testing.F) {
	e := newEnv(f, envOptions{dataPlane: &fakeDataPlane{}})
	d := NewDispatcher(e.srv)
	cmds := e.srv.Registry().All()
	for i, seed := range fuzzSeeds {
		f.Add(uint8(i), []byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, which uint8, payload []byte, holder bool) {
		cmd := cmds[int(which)%len(cmds)]
		caps := []string{"read:**"}
		if holder {
			caps = append(caps, cmd.Capability)
		}
		frame := d.Call(callCtx(t), WSCall{Room: "lobby", Command: cmd.Name, Payload: payload, Pubkey: strings.Repeat("ab", 32), Caps: caps})
		var f struct {
			Type *string `json:"type"`
			Msg  string  `json:"msg"`
		}
		if err := json.Unmarshal(frame, &f); err != nil || f.Type == nil {
			t.Fatalf("frame %q is not a typed JSON object: %v", frame, err)
		}
		if f.Msg == "internal error" {
			t.Fatalf("%s with %q: internal error", cmd.Name, payload)
		}
		if holder && strings.HasPrefix(f.Msg, "reject.control_plane_forbidden") && d.Has(cmd.Name) {
			t.Fatalf("holder denied: %s", frame)
		}
		e.cluster.takeApplied()
		e.audit.take()
	})
}

// FuzzHandlerValidation runs every admin handler on arbitrary requests
// (decoded with protojson, as both doors accept them) as a caller holding
// every capability. Handlers must never panic and must answer a request
// they refuse with a deliberate status, never Internal or Unknown.
func FuzzHandlerValidation(f *testing.F) {
	dp := &fakeDataPlane{}
	e := newEnv(f, envOptions{dataPlane: dp})
	cmds := e.srv.Registry().All()
	for i, seed := range fuzzSeeds {
		f.Add(uint8(i), []byte(seed))
	}
	// Room r1 holds real signed history, so the history commands' seeds
	// reach past validation into the store.
	d := newDiamond(f)
	if _, err := dp.Publish(callCtx(f), "r1", d.nodes); err != nil {
		f.Fatal(err)
	}
	pack := base64.StdEncoding.EncodeToString(packOf(f, d.nodes...))
	for i, cmd := range cmds {
		for _, seed := range historySeeds(pack, d) {
			if historyCommand(cmd.Name) {
				f.Add(uint8(i), []byte(seed))
			}
		}
		if cmd.Name == registerQueryCommand || strings.HasPrefix(cmd.Name, "projection.") {
			for _, seed := range projectionSeeds {
				f.Add(uint8(i), []byte(seed))
			}
		}
	}
	// A registered query over r1, so the projection seeds reach a build
	// and a read.
	if _, err := e.cluster.Apply(callCtx(f), &statev1.Command{ProposedUnixMs: 1, Kind: &statev1.Command_PutQuery{PutQuery: &statev1.PutQuery{
		Room: "r1", Query: &statev1.RegisteredQuery{Name: "all", PathGlob: "world/**"},
	}}}); err != nil {
		f.Fatal(err)
	}
	claims := e.operatorClaims(everyCap...)
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		cmd := cmds[int(which)%len(cmds)]
		req, err := e.srv.registry.newRequest(cmd.FullMethod)
		if err != nil {
			t.Fatal(err)
		}
		if (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(payload, req) != nil {
			return
		}
		p := Principal{Identity: pki.Identity{Role: pki.RoleOperator, Name: "alice"}, Claims: &claims, Command: cmd}
		if cmd.Capability == token.CapClusterNode {
			p = Principal{Identity: pki.Identity{Role: pki.RoleNode, Name: "n2"}, Command: cmd}
		}
		ctx := withPrincipal(withCall(callCtx(t), e.srv.newCall(cmd, TransportGRPC)), p)
		_, err = e.srv.invokeLocal(ctx, cmd, req)
		if code := status.Code(err); code == codes.Internal || code == codes.Unknown {
			t.Fatalf("%s(%q) = %v", cmd.Name, payload, err)
		}
		e.cluster.takeApplied()
	})
}
