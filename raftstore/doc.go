// Package raftstore owns consensus and the replicated cluster state.
//
// A Store is one node's hashicorp/raft member: a bolt (or in-memory) log,
// file snapshots, and a mutual-TLS transport on the Raft port that admits
// only certificates marked as cluster nodes. Its state machine holds the
// cluster id, the member records and the keyring, changed only by
// statev1.Command entries proposed through Store.Apply and read back as
// deep copies. The package knows nothing of gRPC or WebSockets; see
// DESIGN.md for the request path and the reasons behind the choices.
package raftstore
