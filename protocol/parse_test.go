package protocol_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/protocol"
)

var (
	hexA = strings.Repeat("ab", 32)
	hexB = strings.Repeat("0f", 32)
)

func TestParseEnvelope(t *testing.T) {
	cases := []struct {
		in      string
		want    string
		wantErr error
	}{
		{`{"type":"pack","nodes":""}`, "pack", nil},
		{`{"type":"future-thing"}`, "future-thing", nil},
		{`  {"x":1, "type":"request"}  `, "request", nil},
		{`{"type":`, "", protocol.ErrInvalidJSON},
		{``, "", protocol.ErrInvalidJSON},
		{`not json`, "", protocol.ErrInvalidJSON},
		{`{"type":"a"} trailing`, "", protocol.ErrInvalidJSON},
		{`[1,2]`, "", protocol.ErrMissingType},
		{`"hello"`, "", protocol.ErrMissingType},
		{`null`, "", protocol.ErrMissingType},
		{`{}`, "", protocol.ErrMissingType},
		{`{"type":5}`, "", protocol.ErrMissingType},
		{`{"type":null}`, "", protocol.ErrMissingType},
		{`{"type":""}`, "", protocol.ErrMissingType},
	}
	for _, c := range cases {
		got, err := protocol.ParseEnvelope([]byte(c.in))
		if got != c.want || !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
			t.Errorf("ParseEnvelope(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.wantErr)
		}
	}
	if protocol.ErrInvalidJSON.Error() != "invalid JSON" || protocol.ErrMissingType.Error() != "invalid message: missing type" {
		t.Fatal("wire error strings changed")
	}
}

func TestParseHelloAcceptsFullHello(t *testing.T) {
	in := fmt.Sprintf(`{"type":"hello","pubkey":"%s","frontier":["%s"],"subscribe":["**"],
		"caps":{"supports_ibf":true},"token":{"peer_pubkey":"x","expiry":1},"peer_id":"p1","peer_type":"ui","future":[1]}`,
		strings.ToUpper(hexA), hexB)
	h, err := protocol.ParseHello([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if h.Pubkey != hexA || len(h.Frontier) != 1 || h.Frontier[0] != hexB {
		t.Fatalf("hex fields not normalised: %+v", h)
	}
	if len(h.Subscribe) != 1 || h.Subscribe[0] != "**" || !h.Caps["supports_ibf"] || h.PeerID != "p1" || h.PeerType != "ui" {
		t.Fatalf("fields lost: %+v", h)
	}
	if string(h.Token) != `{"peer_pubkey":"x","expiry":1}` {
		t.Fatalf("token = %s", h.Token)
	}
}

func TestParseHelloMinimal(t *testing.T) {
	h, err := protocol.ParseHello([]byte(`{"type":"hello","pubkey":"` + hexA + `","token":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if h.Frontier == nil || len(h.Frontier) != 0 || h.Subscribe != nil || h.Caps != nil || h.Token != nil {
		t.Fatalf("defaults wrong: %+v", h)
	}
}

func TestParseHelloRejects(t *testing.T) {
	pk := `"pubkey":"` + hexA + `"`
	long := strings.Repeat("x", protocol.MaxPeerFieldBytes+1)
	manyIDs := `"` + strings.Repeat(hexB+`","`, protocol.MaxFrontierIDs) + hexB + `"`
	cases := []struct{ in, want string }{
		{`garbage`, "expected hello"},
		{`[]`, "expected hello"},
		{`{"type":"pack","nodes":""}`, "expected hello"},
		{`{"TYPE":"hello",` + pk + `}`, "expected hello"},
		{`{"type":"hello"}`, "invalid hello: missing pubkey"},
		{`{"type":"hello","pubkey":7}`, "invalid hello: pubkey must be a string"},
		{`{"type":"hello","pubkey":"abcd"}`, "invalid hello: pubkey must be 64 hex characters"},
		{`{"type":"hello","pubkey":"` + strings.Repeat("zz", 32) + `"}`, "invalid hello: pubkey must be 64 hex characters"},
		{`{"type":"hello",` + pk + `,"frontier":"x"}`, "invalid hello: frontier must be an array of strings"},
		{`{"type":"hello",` + pk + `,"frontier":["` + hexB + `","12"]}`, "invalid hello: frontier entry 1 must be 64 hex characters"},
		{`{"type":"hello",` + pk + `,"frontier":[` + manyIDs + `]}`, "invalid hello: frontier must have at most 4096 entries"},
		{`{"type":"hello",` + pk + `,"subscribe":[""]}`, "invalid hello: subscribe entry 0 must be 1 to 256 bytes"},
		{`{"type":"hello",` + pk + `,"caps":{"a":"yes"}}`, "invalid hello: caps must be an object of booleans"},
		{`{"type":"hello",` + pk + `,"peer_id":"` + long + `"}`, "invalid hello: peer_id must be at most 128 bytes"},
		{`{"type":"hello",` + pk + `,"peer_type":false}`, "invalid hello: peer_type must be a string"},
		{`{"type":"hello",` + pk + `,"token":"` + strings.Repeat("t", protocol.MaxTokenBytes) + `"}`, "invalid hello: token must be at most 16384 bytes"},
	}
	for _, c := range cases {
		_, err := protocol.ParseHello([]byte(c.in))
		if err == nil || err.Error() != c.want {
			t.Errorf("ParseHello(%.60q) error = %v, want %q", c.in, err, c.want)
		}
		if c.want != "expected hello" && !errors.Is(err, protocol.ErrInvalidHello) {
			t.Errorf("ParseHello(%.60q): %v does not wrap ErrInvalidHello", c.in, err)
		}
	}
}

func TestParseOtherMessages(t *testing.T) {
	p, err := protocol.ParsePack([]byte(`{"type":"pack","nodes":"AAEC"}`))
	if err != nil || p.Nodes != "AAEC" {
		t.Fatalf("pack: %+v %v", p, err)
	}
	for in, want := range map[string]string{
		`{"type":"pack"}`:           "invalid pack: missing nodes",
		`{"type":"pack","nodes":1}`: "invalid pack: nodes must be a base64 string",
	} {
		if _, err := protocol.ParsePack([]byte(in)); err == nil || err.Error() != want {
			t.Errorf("ParsePack(%s) = %v, want %q", in, err, want)
		}
	}

	r, err := protocol.ParseRequest([]byte(`{"type":"request","known":["` + strings.ToUpper(hexB) + `"]}`))
	if err != nil || len(r.Known) != 1 || r.Known[0] != hexB {
		t.Fatalf("request: %+v %v", r, err)
	}
	if r, err := protocol.ParseRequest([]byte(`{"type":"request"}`)); err != nil || r.Known == nil {
		t.Fatalf("request without known: %+v %v", r, err)
	}
	if _, err := protocol.ParseRequest([]byte(`{"type":"request","known":["zz"]}`)); err == nil ||
		err.Error() != "invalid request: known entry 0 must be 64 hex characters" {
		t.Fatalf("bad known: %v", err)
	}

	s, err := protocol.ParseSubscribe([]byte(`{"type":"subscribe","patterns":["world/**","chat/*"]}`))
	if err != nil || len(s.Patterns) != 2 {
		t.Fatalf("subscribe: %+v %v", s, err)
	}
	if s, err := protocol.ParseSubscribe([]byte(`{"type":"subscribe","patterns":[]}`)); err != nil || s.Patterns == nil {
		t.Fatalf("empty subscribe: %+v %v", s, err)
	}
	if _, err := protocol.ParseSubscribe([]byte(`{"type":"subscribe"}`)); err == nil || err.Error() != "invalid subscribe: missing patterns" {
		t.Fatalf("missing patterns: %v", err)
	}
}
