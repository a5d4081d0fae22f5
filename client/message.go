package client

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gorilla/websocket"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// Message is one server message: its type and the frame as received.
type Message struct {
	Type string
	Raw  []byte
}

// AsWelcome decodes a welcome.
func (m Message) AsWelcome() (*protocol.Welcome, error) {
	return decodeAs[protocol.Welcome](m, protocol.TypeWelcome)
}

// AsPack decodes a pack envelope; PackNodes decodes its nodes.
func (m Message) AsPack() (*protocol.Pack, error) {
	return decodeAs[protocol.Pack](m, protocol.TypePack)
}

// AsPackAck decodes a pack-ack.
func (m Message) AsPackAck() (*protocol.PackAck, error) {
	return decodeAs[protocol.PackAck](m, protocol.TypePackAck)
}

// AsSubscribeAck decodes a subscribe-ack.
func (m Message) AsSubscribeAck() (*protocol.SubscribeAck, error) {
	return decodeAs[protocol.SubscribeAck](m, protocol.TypeSubscribeAck)
}

// AsPeerJoined decodes a peer-joined.
func (m Message) AsPeerJoined() (*protocol.PeerJoined, error) {
	return decodeAs[protocol.PeerJoined](m, protocol.TypePeerJoined)
}

// AsPeerLeft decodes a peer-left.
func (m Message) AsPeerLeft() (*protocol.PeerLeft, error) {
	return decodeAs[protocol.PeerLeft](m, protocol.TypePeerLeft)
}

// AsError decodes an error.
func (m Message) AsError() (*protocol.Error, error) {
	return decodeAs[protocol.Error](m, protocol.TypeError)
}

func decodeAs[T any](m Message, typ string) (*T, error) {
	if m.Type != typ {
		return nil, fmt.Errorf("client: message is %q, not %q", m.Type, typ)
	}
	v := new(T)
	if err := json.Unmarshal(m.Raw, v); err != nil {
		return nil, fmt.Errorf("client: decode %s: %w", typ, err)
	}
	return v, nil
}

// PackNodes decodes the nodes of a pack.
func PackNodes(p *protocol.Pack) ([]*syncv1.Node, error) {
	pk, err := history.DecodePack(p.Nodes, 0)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return pk.GetNodes(), nil
}

// CloseError reports the close code and reason the server sent, if err (from
// Dial, Next or Send) came from a close frame.
func CloseError(err error) (code int, text string, ok bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Text, true
	}
	return 0, "", false
}

// HelloError is returned by Dial when the server answers hello with an error
// message (bad hello, admission refused). Err is what ended the connection
// afterwards, normally the server's close; CloseError reads it.
type HelloError struct {
	Msg string
	Err error
}

func (e *HelloError) Error() string {
	return fmt.Sprintf("client: server refused hello: %s (%v)", e.Msg, e.Err)
}

func (e *HelloError) Unwrap() error { return e.Err }
