// Package raftstore owns consensus and the replicated cluster state.
//
// A Store is one node's hashicorp/raft member: a raft-wal (or in-memory)
// log, file snapshots, and a mutual-TLS transport on the Raft port that
// admits only certificates marked as cluster nodes. Its state machine
// holds the cluster id, member records, the keyring, rooms (lock, own
// keys, policy timeline, placement), revocations and tick schedules,
// changed only by statev1.Command entries proposed through Store.Apply and
// read back as deep copies. Observers follow changes through Config.OnApply
// and OnRestore; ReadIndex and WaitApplied give linearizable reads on any
// node. The package knows nothing of gRPC or WebSockets; see DESIGN.md for
// the request path and the reasons behind the choices.
package raftstore
