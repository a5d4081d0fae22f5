package protocol

import (
	"encoding/json"
	"fmt"
)

// MaxCommandIDBytes bounds a command's optional correlation id.
const MaxCommandIDBytes = 128

// Command is the envelope shared by every control command on the
// WebSocket path (SPEC section 4): a JSON object with a string type, an
// optional string id that the reply echoes so a client can match replies
// to requests, and command-specific fields that the command's handler
// parses itself.
type Command struct {
	Type string
	ID   string
	// Fields holds every field but type and id.
	Fields map[string]json.RawMessage
}

// ParseCommand parses the envelope of a control command.
func ParseCommand(frame []byte) (*Command, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(frame, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidCommand)
	}
	c := &Command{Fields: fields}
	if err := json.Unmarshal(fields["type"], &c.Type); err != nil || c.Type == "" {
		return nil, fmt.Errorf("%w: type must be a non-empty string", ErrInvalidCommand)
	}
	if raw, ok := fields["id"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &c.ID); err != nil {
			return nil, fmt.Errorf("%w: id must be a string", ErrInvalidCommand)
		}
		if len(c.ID) > MaxCommandIDBytes {
			return nil, fmt.Errorf("%w: id must be at most %d bytes", ErrInvalidCommand, MaxCommandIDBytes)
		}
	}
	delete(fields, "type")
	delete(fields, "id")
	return c, nil
}
