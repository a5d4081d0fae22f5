package protocol_test

import (
	"encoding/json"
	"errors"
	"testing"

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
	})
}
