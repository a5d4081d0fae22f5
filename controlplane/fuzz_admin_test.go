package controlplane

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

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
	e := newEnv(f, envOptions{dataPlane: &fakeDataPlane{}})
	cmds := e.srv.Registry().All()
	for i, seed := range fuzzSeeds {
		f.Add(uint8(i), []byte(seed))
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
