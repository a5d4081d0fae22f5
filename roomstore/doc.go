// Package roomstore keeps every room's history durably on disk (--store).
//
// A Store is the data plane's RoomStore: Open hands out a history.Store per
// room, loaded into memory from the room's file; Release drops that memory
// when the room goes idle; Close flushes and closes everything. Put is
// durable when it returns, because the data plane sends pack-ack right
// after it: concurrent Puts, in one room or many, share one fsync of a
// shared write-ahead log (group commit). See DESIGN.md.
package roomstore
