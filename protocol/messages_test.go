package protocol_test

import (
	"encoding/json"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// The wire never carries null arrays and always carries the right type,
// whatever the sender filled in.
func TestMarshalFixesTypeAndEmptyArrays(t *testing.T) {
	cases := []struct {
		msg  any
		want string
	}{
		{protocol.Welcome{Type: "wrong"}, `{"type":"welcome","root":"","frontier":[],"missing":[],"caps":{},"server_pubkey":"","peers":[]}`},
		{&protocol.PackAck{Accepted: 1, Incoming: 1}, `{"type":"pack-ack","accepted":1,"rejected":0,"incoming":1,"rejections":[]}`},
		{protocol.Pack{Nodes: "AA=="}, `{"type":"pack","nodes":"AA=="}`},
		{protocol.Pack{From: "f", Nodes: "", Root: "r"}, `{"type":"pack","from":"f","nodes":"","root":"r"}`},
		{protocol.Hello{Pubkey: "k"}, `{"type":"hello","pubkey":"k","frontier":[]}`},
		{protocol.Request{}, `{"type":"request","known":[]}`},
		{protocol.Subscribe{}, `{"type":"subscribe","patterns":[]}`},
		{protocol.SubscribeAck{}, `{"type":"subscribe-ack","patterns":[]}`},
		{protocol.PeerJoined{From: "k", Pubkey: "k"}, `{"type":"peer-joined","from":"k","pubkey":"k","peer_id":"","peer_type":""}`},
		{protocol.PeerLeft{From: "k", Pubkey: "k", PeerID: "i", PeerType: "ui"}, `{"type":"peer-left","from":"k","pubkey":"k","peer_id":"i","peer_type":"ui"}`},
		{protocol.Error{Msg: "invalid JSON"}, `{"type":"error","msg":"invalid JSON"}`},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.msg)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("got  %s\nwant %s", b, c.want)
		}
	}
}

func TestHelloRoundTrip(t *testing.T) {
	in := protocol.Hello{Pubkey: hexA, Frontier: []string{hexB}, Subscribe: []string{"**"}, Caps: map[string]bool{"x": true},
		Token: json.RawMessage(`{"a":1}`), PeerID: "id", PeerType: "bot"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := protocol.ParseHello(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Pubkey != in.Pubkey || out.Frontier[0] != hexB || out.Subscribe[0] != "**" || !out.Caps["x"] ||
		string(out.Token) != `{"a":1}` || out.PeerID != "id" || out.PeerType != "bot" || out.Type != protocol.TypeHello {
		t.Fatalf("round trip lost fields: %+v", out)
	}
}
