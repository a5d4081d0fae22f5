// Package tick runs rooms' server ticks: every interval the node that runs a
// room's tick reads the current value of each key under the room's intent
// prefix and writes the matching world/ keys as one node signed with the
// server key.
//
// A Materializer keeps a room's last-writer-wins view up to date
// incrementally (only the nodes its frontier does not cover are applied);
// a Runner owns one goroutine per ticking room and starts or stops them as
// the replicated schedules and the node's leadership change.
package tick
