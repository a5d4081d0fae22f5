package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/nodalmerge/nodalmerge-go/token"
)

// WSCall is one control command received on a WebSocket session.
type WSCall struct {
	// Room is the session's room; it is forced into the request.
	Room string
	// Command is the frame's "type", e.g. "set-policy".
	Command string
	// Payload is the whole JSON frame; its fields are the request's
	// (protojson names), "type" and unknown fields are ignored.
	Payload []byte
	// Pubkey is the hex key the session authenticated with; the audit
	// actor.
	Pubkey string
	// Caps are the caps of the session's room token; nil: no token, no
	// capability.
	Caps []string
	// TokenExpiry is the session's room token expiry in Unix seconds
	// (0: none). Tokens minted through the session never outlive it.
	TokenExpiry uint64
	// RequestID correlates the call in logs; when the frame has neither
	// "id" nor "request_id", it is echoed back as "request_id".
	RequestID string
}

// Dispatcher runs WebSocket control commands through the same registry,
// authorization rule, handlers, routing to the leader and audit as the
// gRPC door, so a command behaves the same whichever door it came
// through. It is safe for concurrent use.
type Dispatcher struct {
	s *Server
}

// NewDispatcher answers the WebSocket door of s.
func NewDispatcher(s *Server) *Dispatcher { return &Dispatcher{s: s} }

// Has reports whether name is a control command the WebSocket door serves:
// every registered command except the gRPC-only ones (SPEC section 4).
// The data plane treats other frame types as it treats unknown types.
func (d *Dispatcher) Has(name string) bool {
	cmd, ok := d.s.registry.ByName(name)
	if !ok || grpcOnly(cmd) {
		return false
	}
	_, served := d.s.handlers[cmd.FullMethod]
	return served
}

// grpcOnly reports the commands SPEC section 4 keeps off the WebSocket
// door: they act on the cluster, not on the session's room. list-ticks is
// not room-scoped either, so it is gRPC only too.
func grpcOnly(cmd Command) bool {
	switch cmd.Name {
	case listRoomsCommand, "list-ticks", "topology.place-room", "topology.drain-node", mintCommand:
		return true
	}
	for _, prefix := range []string{"cluster.", "keys.", "audit."} {
		if strings.HasPrefix(cmd.Name, prefix) {
			return true
		}
	}
	return cmd.Capability == token.CapClusterNode || !cmd.RoomScoped
}

// Frame limits: echoed ids are short scalars; error texts are bounded.
const (
	maxEchoIDBytes  = 128
	maxWSErrorBytes = 512
)

// Call runs one command and answers exactly one JSON frame: the result
// `{"type":"<command>-result", ...response fields}`, or
// `{"type":"error","msg":"..."}`. It never answers nothing and never
// panics: a failing handler answers "internal error".
func (d *Dispatcher) Call(ctx context.Context, wc WSCall) (frame []byte) {
	ids := echoIDs(wc.Payload, wc.RequestID)
	defer func() {
		if p := recover(); p != nil {
			d.s.logger.ErrorContext(ctx, "panic in websocket command", "command", clip(wc.Command), "panic", describePanic(p))
			frame = errorFrame(ids, "internal error")
		}
	}()
	s := d.s
	cmd, ok := s.registry.ByName(wc.Command)
	if !ok {
		return errorFrame(ids, "unknown command: "+clip(wc.Command))
	}
	c := s.newCall(cmd, TransportWebSocket)
	c.setActor(wc.Pubkey)
	c.setRoom(wc.Room)
	ctx = withCall(ctx, c)
	defer s.finish(ctx, c)
	if !d.Has(cmd.Name) {
		c.decide(DecisionDeny, "not available over websocket")
		return errorFrame(ids, cmd.Name+" is not available over WebSocket: use the gRPC admin API")
	}
	sess := &Session{Room: wc.Room, Pubkey: wc.Pubkey, Caps: wc.Caps}
	if wc.TokenExpiry > 0 && wc.TokenExpiry <= uint64(maxUnixSeconds) {
		sess.TokenExpiry = time.Unix(int64(wc.TokenExpiry), 0)
	}
	p := Principal{Session: sess, Command: cmd}
	ctx = withPrincipal(ctx, p)
	// Authorization comes before the payload is even parsed, so a caller
	// without the capability gets the deny whatever it sent.
	if reason, ok := allowed(p, cmd, wc.Room); !ok {
		c.decide(DecisionDeny, reason)
		return errorFrame(ids, cmd.DenyMessage())
	}
	c.decide(DecisionAllow, "")

	req, err := s.registry.newRequest(cmd.FullMethod)
	if err != nil {
		s.logger.ErrorContext(ctx, "websocket command: request type", "command", cmd.Name, "error", err)
		return errorFrame(ids, "internal error")
	}
	payload := wc.Payload
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(payload, req); err != nil {
		return errorFrame(ids, "invalid "+cmd.Name+" payload: "+clip(err.Error()))
	}
	setRoom(req, wc.Room)
	resp, err := s.route(ctx, c, req, func(ctx context.Context) (any, error) { return s.invokeLocal(ctx, cmd, req) })
	if err != nil {
		return errorFrame(ids, status.Convert(err).Message())
	}
	m, ok := resp.(proto.Message)
	if !ok {
		s.logger.ErrorContext(ctx, "websocket command: handler answered a non-message", "command", cmd.Name)
		return errorFrame(ids, "internal error")
	}
	return resultFrame(ids, cmd.Name+"-result", m)
}

// maxUnixSeconds keeps a caller-given expiry inside time.Time's range.
const maxUnixSeconds = 1 << 40

// invokeLocal runs the registered handler of cmd here, without the gRPC
// interceptors (the dispatcher did their work).
func (s *Server) invokeLocal(ctx context.Context, cmd Command, req proto.Message) (any, error) {
	h, ok := s.handlers[cmd.FullMethod]
	if !ok {
		return nil, internalError()
	}
	dec := func(v any) error {
		m, ok := v.(proto.Message)
		if !ok {
			return internalError()
		}
		proto.Merge(m, req)
		return nil
	}
	return h.desc.Handler(h.impl, ctx, dec, nil)
}

// setRoom forces the session's room into a request's room field.
func setRoom(m proto.Message, room string) {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(roomFieldName)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.Cardinality() == protoreflect.Repeated {
		return
	}
	r.Set(fd, protoreflect.ValueOfString(room))
}

// echoID is one client correlation field to send back.
type echoID struct {
	key string
	raw json.RawMessage
}

// echoIDs picks the frame's "id" and "request_id" when they are short
// strings or numbers; otherwise RequestID, as "request_id".
func echoIDs(payload []byte, requestID string) []echoID {
	var f struct {
		ID        json.RawMessage `json:"id"`
		RequestID json.RawMessage `json:"request_id"`
	}
	var out []echoID
	if json.Unmarshal(payload, &f) == nil {
		for _, e := range []echoID{{"id", f.ID}, {"request_id", f.RequestID}} {
			if scalarID(e.raw) {
				out = append(out, e)
			}
		}
	}
	if len(out) == 0 && requestID != "" && len(requestID) <= maxEchoIDBytes && utf8.ValidString(requestID) {
		raw, err := json.Marshal(requestID)
		if err == nil {
			out = append(out, echoID{"request_id", raw})
		}
	}
	return out
}

// scalarID accepts a JSON string or number of bounded size.
func scalarID(raw json.RawMessage) bool {
	if len(raw) == 0 || len(raw) > maxEchoIDBytes {
		return false
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch v.(type) {
	case string, float64:
		return true
	}
	return false
}

// errorFrame builds {"type":"error","msg":...} plus the echoed ids.
func errorFrame(ids []echoID, msg string) []byte {
	if len(msg) > maxWSErrorBytes {
		msg = strings.ToValidUTF8(msg[:maxWSErrorBytes], "")
	}
	m, _ := json.Marshal(msg) // a string always marshals
	return frameWith("error", ids, `"msg":`+string(m))
}

// resultFrame builds {"type":"<name>","...ids","...response fields"}: the
// response in protojson with the proto field names, so one JSON shape
// serves gRPC-JSON and WebSocket clients.
func resultFrame(ids []echoID, typ string, m proto.Message) []byte {
	body, err := (protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}).Marshal(m)
	if err != nil {
		return errorFrame(ids, "internal error")
	}
	body = bytes.TrimSpace(body)
	inner := strings.TrimSpace(string(body[1 : len(body)-1]))
	return frameWith(typ, ids, inner)
}

func frameWith(typ string, ids []echoID, fields string) []byte {
	t, _ := json.Marshal(typ)
	var b bytes.Buffer
	b.WriteString(`{"type":`)
	b.Write(t)
	for _, id := range ids {
		b.WriteString(`,"` + id.key + `":`)
		b.Write(id.raw)
	}
	if fields != "" {
		b.WriteByte(',')
		b.WriteString(fields)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// clip bounds an untrusted string before it goes into a frame or a log.
func clip(s string) string {
	const max = 128
	if len(s) > max {
		s = s[:max]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
