// Package protocol defines the JSON envelopes of the WebSocket data plane
// (SPEC section 2), shared by the server and the Go client, and the strict
// parsers the server applies to untrusted frames.
//
// Every message is a JSON object with a string "type". Outgoing messages
// always carry their type and never encode arrays as null, whatever the
// caller filled in: each type's MarshalJSON enforces that, so the wire
// contract cannot be broken by a forgotten field.
package protocol
