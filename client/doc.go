// Package client is a Go client for the NodalMerge WebSocket protocol
// (SPEC section 2). Tests, the end-to-end suite and the load tool use it, so
// it does what a real client does: it dials, sends hello, waits for welcome,
// and then hands the caller every server message in order.
//
// One goroutine per connection reads from the socket and hands messages to
// Next through an unbuffered channel: a caller that stops calling Next stops
// reading, so the server sees real backpressure (which is how the slow-peer
// tests provoke a 4001).
package client
