// Package history holds a room's history: signed, content-addressed nodes
// forming a grow-only DAG.
//
// A node is a protobuf Transaction signed by its author. Its id is the
// BLAKE3-256 hash of the exact transaction bytes as they arrived, so a node is
// never re-encoded to be checked and two replicas that hold the same bytes
// agree on the id. Because the history is a set of such nodes, merging two
// copies is a union and replicas converge whatever the order of arrival.
//
// The package has three parts: ids and node construction (id.go, node.go),
// the ingest checks (validate.go) and the per-room store (store.go,
// memstore.go). It knows nothing about WebSockets; the data plane and the
// Go client both use it.
package history
