package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/pathglob"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

func FuzzParseHello(f *testing.F) {
	f.Add([]byte(`{"type":"hello","pubkey":"` + hexA + `","frontier":["` + hexB + `"],"subscribe":["**"],"caps":{"a":true},"token":{},"peer_id":"x","peer_type":"ui"}`))
	f.Add([]byte(`{"type":"hello"}`))
	f.Add([]byte(`{"type":"hello","pubkey":null,"frontier":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"type":"hello","caps":{"":false}}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, err := protocol.ParseHello(frame)
		if err != nil {
			if !errors.Is(err, protocol.ErrExpectedHello) && !errors.Is(err, protocol.ErrInvalidHello) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(h.Pubkey) != 64 || h.Frontier == nil || len(h.Frontier) > protocol.MaxFrontierIDs ||
			len(h.Subscribe) > protocol.MaxPatterns || len(h.PeerID) > protocol.MaxPeerFieldBytes {
			t.Fatalf("accepted hello breaks limits: %+v", h)
		}
		// What was accepted must survive a round trip unchanged.
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := protocol.ParseHello(b); err != nil {
			t.Fatalf("re-parse of accepted hello failed: %v", err)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{`{"type":"pack","nodes":""}`, `{"type":5}`, `[`, `null`, `{"type":"request","known":["aa"]}`,
		`{"type":"subscribe","patterns":["**"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		typ, err := protocol.ParseEnvelope(frame)
		if err != nil {
			if err != protocol.ErrInvalidJSON && err != protocol.ErrMissingType {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if typ == "" {
			t.Fatal("empty type without error")
		}
		// The typed parsers must not panic on anything the envelope lets
		// through.
		_, _ = protocol.ParsePack(frame)
		_, _ = protocol.ParseRequest(frame)
		_, _ = protocol.ParseSubscribe(frame)
		_, _ = protocol.ParsePresence(frame)
		_, _ = protocol.ParseWebRTC(frame)
		_, _ = protocol.ParseCommand(frame)
	})
}

func FuzzParsePresence(f *testing.F) {
	for _, s := range []string{`{"type":"presence","data":{"c":[1,2]},"ttl_ms":100,"now_unix_ms":5}`, `{"data":null}`,
		`{"data":1,"ttl_ms":1e3}`, `{"ttl_ms":null}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := protocol.ParsePresence(frame)
		if err != nil {
			if !errors.Is(err, protocol.ErrInvalidPresence) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if p.TTLMs != nil && (p.NowUnixMs == nil || *p.TTLMs == 0 || *p.TTLMs > protocol.MaxPresenceTTLMs) {
			t.Fatalf("accepted presence breaks the ttl rule: %+v", p)
		}
		b, err := json.Marshal(p)
		if err != nil || !json.Valid(b) {
			t.Fatalf("relay form does not encode: %v", err)
		}
	})
}

func FuzzParseWebRTC(f *testing.F) {
	for _, s := range []string{`{"type":"webrtc-offer","to":"` + hexA + `","sdp":"x"}`, `{"type":"webrtc-ice"}`,
		`{"type":"webrtc-answer","to":null,"from":1}`, `{"type":"x"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := protocol.ParseWebRTC(frame)
		if err != nil {
			if !errors.Is(err, protocol.ErrInvalidWebRTC) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !protocol.IsWebRTC(m.Type) || (m.To != "" && len(m.To) != 64) {
			t.Fatalf("accepted %+v", m)
		}
		m.From = hexB
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		// The relay parses back to the same target, with our from.
		again, err := protocol.ParseWebRTC(b)
		if err != nil || again.To != m.To || again.Type != m.Type {
			t.Fatalf("relay does not re-parse: %s %v", b, err)
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{`{"type":"describe-room","id":"1","room":"r"}`, `{"type":""}`, `{"type":"x","id":null}`, `1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, err := protocol.ParseCommand(frame)
		if err != nil {
			if !errors.Is(err, protocol.ErrInvalidCommand) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if c.Type == "" || len(c.ID) > protocol.MaxCommandIDBytes {
			t.Fatalf("accepted %+v", c)
		}
		if _, ok := c.Fields["type"]; ok {
			t.Fatal("type left in fields")
		}
	})
}

func FuzzParseSubscribe(f *testing.F) {
	for _, s := range []string{`{"type":"subscribe","patterns":["world/**","chat/*"]}`, `{"patterns":[]}`, `{"patterns":["a//b"]}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		s, err := protocol.ParseSubscribe(frame)
		if err != nil {
			if !errors.Is(err, protocol.ErrInvalidSubscribe) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if s.Patterns == nil || len(s.Patterns) > protocol.MaxPatterns {
			t.Fatalf("accepted %+v", s)
		}
		for _, p := range s.Patterns {
			if _, err := pathglob.Compile(p); err != nil {
				t.Fatalf("accepted pattern %q that does not compile: %v", p, err)
			}
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{`{"type":"request","known":["` + hexA + `"]}`, `{"known":null}`, `{"known":["zz"]}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		r, err := protocol.ParseRequest(frame)
		if err != nil {
			if !errors.Is(err, protocol.ErrInvalidRequest) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if r.Known == nil || len(r.Known) > protocol.MaxFrontierIDs {
			t.Fatalf("accepted %+v", r)
		}
		for _, id := range r.Known {
			if len(id) != 64 || strings.ToLower(id) != id {
				t.Fatalf("known id %q not normalised", id)
			}
		}
	})
}

func FuzzParsePack(f *testing.F) {
	for _, s := range []string{`{"type":"pack","nodes":"AAEC"}`, `{"nodes":1}`, `{}`, `{"nodes":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if _, err := protocol.ParsePack(frame); err != nil && !errors.Is(err, protocol.ErrInvalidPack) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
