// Package controlplane is the node's gRPC admin server: the command registry
// built from the proto options, mTLS + bearer-token authentication,
// capability authorization, audit, metrics, routing to the Raft leader and
// the admin services, plus the Dispatcher through which the data plane runs
// the same commands for WebSocket sessions.
//
// Every admin RPC is a command. Its name and required capability are read
// once, at start, from the nodalmerge.admin.v1.command method option; nothing
// else in the code base decides who may run what. A method the registry does
// not know is refused, so forgetting the annotation denies access instead of
// granting it.
package controlplane
