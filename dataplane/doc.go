// Package dataplane serves rooms over WebSocket at GET /ws/{room} (SPEC
// section 2): the hello/welcome handshake with catch-up, pack ingest through
// the history validator, relay of accepted nodes to the room's other
// sessions, peer-joined/peer-left, and error envelopes for bad input.
//
// Each session has one reader goroutine (the HTTP handler's own) and one
// writer goroutine that owns every write on the socket, including pongs and
// close frames. Everything addressed to a session goes through its bounded
// queue; a broadcast is encoded once and the same bytes are queued for every
// receiver. A full queue closes the session with 4001 "resync required":
// a connected peer never silently misses a message.
//
// See DESIGN.md for the request path and the reasons behind the choices.
package dataplane
