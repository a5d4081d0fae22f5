// Package token mints and verifies the two credentials of SPEC section 3.
//
// Operator bearer tokens are JWTs signed EdDSA by the cluster keyring's
// operator key, carried as "authorization: Bearer <jwt>" on the admin gRPC
// API. Verification is deliberately narrow: only alg EdDSA, a kid header
// that is looked up through the caller's KeyFunc (never trusted for
// anything else), a fixed set of required claims, and a size limit applied
// before any decoding.
//
// Room tokens are the hello.token object of the WebSocket handshake: an
// Ed25519 signature by a room key (the room's own, or the cluster's
// room-token key) over a byte-exact message shared with the reference
// server. ParseRoomToken and VerifyRoom check them in a fixed, documented
// order.
//
// Every failure is an *Error with a stable, secret-free Reason.
package token
