// Package loadgen drives a running NodalMerge server over its public
// WebSocket protocol and measures it: fan-out (one room, many subscribers),
// signed ingest, and handshake storms. cmd/nodalmerge-bench is its command
// line; DESIGN.md says how each scenario measures.
//
// The generator shares the machine with the server it measures, so it is
// built to be cheap where it matters: nodes are signed before the timed
// window, subscribers count frames without decoding them, and only a
// sample of subscribers decodes packs to measure end-to-end latency.
package loadgen
