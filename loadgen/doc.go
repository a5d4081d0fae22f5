// Package loadgen drives a running NodalMerge server and measures it: over
// its public WebSocket protocol, fan-out (rooms of many subscribers),
// signed ingest and handshake storms; over its gRPC admin API, replicated
// writes and capability-gated reads. cmd/nodalmerge-bench is its command
// line; DESIGN.md says how each scenario measures.
//
// The generator shares the machine with the server it measures, so it is
// built to be cheap where it matters: nodes are signed before the timed
// window, subscribers count frames without decoding them, and only a
// sample of subscribers decodes packs to measure end-to-end latency.
package loadgen
