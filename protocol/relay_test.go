package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/protocol"
)

func TestParsePresence(t *testing.T) {
	p, err := protocol.ParsePresence([]byte(`{"type":"presence","from":"spoofed","data":{ "x" : 1 },"ttl_ms":500,"now_unix_ms":1700000000000}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Data) != `{"x":1}` || p.TTLMs == nil || *p.TTLMs != 500 || p.NowUnixMs == nil || p.From != "" {
		t.Fatalf("presence = %+v", p)
	}
	// The relay form: from set by the server, no client clock.
	relay := protocol.Presence{From: "k", Data: p.Data, TTLMs: p.TTLMs}
	b, _ := json.Marshal(relay)
	if string(b) != `{"type":"presence","from":"k","data":{"x":1},"ttl_ms":500}` {
		t.Fatalf("relay = %s", b)
	}
	if p, err := protocol.ParsePresence([]byte(`{"type":"presence","data":null}`)); err != nil || string(p.Data) != "null" || p.TTLMs != nil {
		t.Fatalf("null data: %+v %v", p, err)
	}
	for in, want := range map[string]string{
		`{"type":"presence"}`:                                     "invalid presence: missing data",
		`{"type":"presence","data":1,"ttl_ms":100}`:               "invalid presence: ttl_ms requires now_unix_ms (the client clock the lease starts from)",
		`{"type":"presence","data":1,"ttl_ms":-1}`:                "invalid presence: ttl_ms must be a non-negative integer",
		`{"type":"presence","data":1,"ttl_ms":0,"now_unix_ms":1}`: "invalid presence: ttl_ms must be 1 to 86400000",
		`{"type":"presence","data":1,"now_unix_ms":"x"}`:          "invalid presence: now_unix_ms must be a non-negative integer",
		`[]`: "invalid presence: not a JSON object",
	} {
		_, err := protocol.ParsePresence([]byte(in))
		if err == nil || err.Error() != want || !errors.Is(err, protocol.ErrInvalidPresence) {
			t.Errorf("ParsePresence(%s) = %v, want %q", in, err, want)
		}
	}
}

func TestParseWebRTC(t *testing.T) {
	in := `{"type":"webrtc-offer","to":"` + strings.ToUpper(hexA) + `","from":"spoofed","sdp":"v=0","n":[1,2]}`
	m, err := protocol.ParseWebRTC([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != protocol.TypeWebRTCOffer || m.To != hexA {
		t.Fatalf("parsed %+v", m)
	}
	m.From = hexB
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"from":"` + hexB + `","n":[1,2],"sdp":"v=0","to":"` + hexA + `","type":"webrtc-offer"}`
	if string(b) != want {
		t.Fatalf("relay = %s\nwant    %s", b, want)
	}
	if m, err := protocol.ParseWebRTC([]byte(`{"type":"webrtc-ice","candidate":{}}`)); err != nil || m.To != "" {
		t.Fatalf("broadcast ice: %+v %v", m, err)
	}
	for in, want := range map[string]string{
		`{"type":"webrtc-offer","to":"abc"}`: "invalid webrtc message: to must be 64 hex characters",
		`{"type":"webrtc-offer","to":5}`:     "invalid webrtc message: to must be a string",
		`{"type":"webrtc-other"}`:            "invalid webrtc message: type must be webrtc-offer, webrtc-answer or webrtc-ice",
		`"x"`:                                "invalid webrtc message: not a JSON object",
	} {
		_, err := protocol.ParseWebRTC([]byte(in))
		if err == nil || err.Error() != want || !errors.Is(err, protocol.ErrInvalidWebRTC) {
			t.Errorf("ParseWebRTC(%s) = %v, want %q", in, err, want)
		}
	}
}

func TestParseCommand(t *testing.T) {
	c, err := protocol.ParseCommand([]byte(`{"type":"describe-room","id":"r1","room":"x"}`))
	if err != nil || c.Type != "describe-room" || c.ID != "r1" || string(c.Fields["room"]) != `"x"` || len(c.Fields) != 1 {
		t.Fatalf("command = %+v %v", c, err)
	}
	for in, want := range map[string]string{
		`{"id":"x"}`:          "invalid command: type must be a non-empty string",
		`{"type":"x","id":3}`: "invalid command: id must be a string",
		`{"type":"x","id":"` + strings.Repeat("i", 129) + `"}`: "invalid command: id must be at most 128 bytes",
		`nope`: "invalid command: not a JSON object",
	} {
		_, err := protocol.ParseCommand([]byte(in))
		if err == nil || err.Error() != want || !errors.Is(err, protocol.ErrInvalidCommand) {
			t.Errorf("ParseCommand(%s) = %v, want %q", in, err, want)
		}
	}
}

func TestSubscribePatternsMustCompile(t *testing.T) {
	_, err := protocol.ParseSubscribe([]byte(`{"type":"subscribe","patterns":["ok/**","a//b"]}`))
	if err == nil || err.Error() != "invalid subscribe: patterns entry 1: invalid pattern: segment 2 is empty (no leading, trailing or doubled '/')" {
		t.Fatalf("err = %v", err)
	}
	_, err = protocol.ParseHello([]byte(`{"type":"hello","pubkey":"` + hexA + `","subscribe":["x**"]}`))
	if err == nil || err.Error() != "invalid hello: subscribe entry 0: invalid pattern: segment 1: '**' must be a whole segment" {
		t.Fatalf("err = %v", err)
	}
}
