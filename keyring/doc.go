// Package keyring holds the rules of the cluster keyring: how keys are
// generated and named, which key signs, which keys verify, and how a key may
// move through its states (prepublished → active → verify-only → retired).
//
// It is pure logic over the replicated []*statev1.Key: no I/O, no clock of
// its own (callers pass now), so every node applying the same state and
// time reaches the same answer, and the rules are testable as tables.
package keyring
