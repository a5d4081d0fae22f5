// Package token mints and verifies operator bearer tokens (SPEC section 3):
// JWTs signed EdDSA by the cluster keyring's operator key, carried as
// "authorization: Bearer <jwt>" on the admin gRPC API.
//
// Verification is deliberately narrow: only alg EdDSA, a kid header that is
// looked up through the caller's KeyFunc (never trusted for anything else),
// a fixed set of required claims, and a size limit applied before any
// decoding. Every failure is an *Error with a stable, secret-free Reason.
package token
