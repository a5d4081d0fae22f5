package dataplane

import (
	"time"

	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// handle dispatches one frame after the handshake. Bad input gets an error
// envelope and the socket stays open; unknown types are ignored so newer
// clients can talk to this server.
func (s *session) handle(frame []byte) {
	typ, err := protocol.ParseEnvelope(frame)
	if typ != protocol.TypePack {
		// Consecutive packs pipeline; anything else is answered after
		// them, in the order the client sent it.
		s.settle()
	}
	if err != nil {
		s.sendError(err.Error())
		return
	}
	switch {
	case typ == protocol.TypePack:
		s.onPack(frame)
	case typ == protocol.TypeRequest:
		s.onRequest(frame)
	case typ == protocol.TypeSubscribe:
		s.onSubscribe(frame)
	case typ == protocol.TypePresence:
		s.onPresence(frame)
	case protocol.IsWebRTC(typ):
		s.onWebRTC(frame)
	default:
		if c := s.srv.cfg.Commands; c != nil && c.Has(typ) {
			s.onCommand(c, typ, frame)
		}
	}
}

// charge takes nodes and bytes from the peer's rate bucket, closing the
// session with 4008 when they do not fit. It runs before any decode of
// node contents or signature check, so a flood costs the server little.
func (s *session) charge(nodes, bytes int) bool {
	if s.limit == nil || s.limit.take(s.srv.limits, nodes, bytes, time.Now()) {
		return true
	}
	s.srv.metrics.rateDrops.Inc()
	s.log.Info("peer over its rate limit; closing", "pubkey", s.pubkey, "nodes", nodes, "bytes", bytes)
	s.abort(closeRateLimit, reasonRateLimit)
	return false
}

func (s *session) onPack(frame []byte) {
	p, err := protocol.ParsePack(frame)
	if err != nil {
		s.settle()
		s.sendError(err.Error())
		return
	}
	raw, err := history.ScanPack(p.Nodes, maxPackNodes)
	if err != nil {
		s.settle()
		s.sendError(err.Error())
		return
	}
	if !s.charge(raw.Nodes, len(raw.Bytes)) {
		return
	}
	pack, err := raw.Decode()
	if err != nil {
		s.settle()
		s.sendError(err.Error())
		return
	}
	s.room.ingest(s, pack.GetNodes())
}

func (s *session) onRequest(frame []byte) {
	req, err := protocol.ParseRequest(frame)
	if err != nil {
		s.sendError(err.Error())
		return
	}
	known, err := history.ParseIDs(req.Known)
	if err != nil { // ParseRequest already checked the hex; kept for safety
		s.sendError("invalid request: known ids must be 64 hex characters")
		return
	}
	s.room.answerRequest(s, known)
}

func (s *session) onSubscribe(frame []byte) {
	req, err := protocol.ParseSubscribe(frame)
	if err != nil {
		s.sendError(err.Error())
		return
	}
	sub, err := newSubscription(req.Patterns, s.grant.read, s.grant.readKey)
	if err != nil { // ParseSubscribe compiled the patterns already
		s.sendError("invalid subscribe: " + err.Error())
		return
	}
	s.room.subscribe(s, sub, req.Patterns)
}

// onPresence relays ephemeral state to the room's other sessions; it is
// never stored.
func (s *session) onPresence(frame []byte) {
	p, err := protocol.ParsePresence(frame)
	if err != nil {
		s.sendError(err.Error())
		return
	}
	if !s.charge(0, len(frame)) {
		return
	}
	b, err := encode(protocol.Presence{From: s.pubkey, Data: p.Data, TTLMs: p.TTLMs})
	if err != nil {
		s.log.Error("encode presence", "err", err)
		return
	}
	s.room.relayToOthers(s, b)
}

// onWebRTC relays signalling to one peer (to) or to every other session.
func (s *session) onWebRTC(frame []byte) {
	m, err := protocol.ParseWebRTC(frame)
	if err != nil {
		s.sendError(err.Error())
		return
	}
	if !s.charge(0, len(frame)) {
		return
	}
	m.From = s.pubkey
	b, err := encode(m)
	if err != nil {
		s.log.Error("encode webrtc relay", "err", err)
		return
	}
	if m.To == "" {
		s.room.relayToOthers(s, b)
		return
	}
	if !s.room.relayToKey(s, m.To, b) {
		s.sendError(protocol.ErrInvalidWebRTC.Error() + ": to names no peer in this room")
	}
}

// onCommand runs a control command off every data-plane lock and queues
// its reply.
func (s *session) onCommand(c Commands, typ string, frame []byte) {
	info := s.info.Load()
	reply := c.Handle(s.ctx, CommandCall{Room: s.roomName, Type: typ, Frame: frame, Pubkey: s.pubkey, Session: *info})
	if reply != nil {
		s.send(reply)
	}
}
