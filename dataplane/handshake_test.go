package dataplane_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

func TestFirstFrameMustBeHello(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	for name, frame := range map[string]string{
		"other type":   `{"type":"pack","nodes":""}`,
		"invalid JSON": `{"type":`,
		"not object":   `["hello"]`,
	} {
		t.Run(name, func(t *testing.T) {
			ws := h.rawConn(t, "r")
			if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
				t.Fatal(err)
			}
			rawExpectErrorThenClose(t, ws, "expected hello", 1008, "expected hello")
		})
	}
}

func TestBadHelloNamesTheField(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	ws := h.rawConn(t, "r")
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","pubkey":"abc"}`)); err != nil {
		t.Fatal(err)
	}
	const msg = "invalid hello: pubkey must be 64 hex characters"
	rawExpectErrorThenClose(t, ws, msg, 1008, msg)
}

func TestNoHelloWithinTimeout(t *testing.T) {
	h := newHarness(t, dataplane.Config{HandshakeTimeout: 150 * time.Millisecond})
	ws := h.rawConn(t, "r")
	// Pings do not extend the handshake.
	if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rawExpectErrorThenClose(t, ws, "", 1008, "handshake timeout")
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("closed after %v", waited)
	}
}

func TestBadInputAfterHandshakeKeepsTheSocket(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	c := h.dial(t, "r", client.Options{})
	for _, tc := range []struct{ frame, msg string }{
		{`{"type":"pack",`, "invalid JSON"},
		{`{"no":"type"}`, "invalid message: missing type"},
		{`[1,2,3]`, "invalid message: missing type"},
		{`{"type":7}`, "invalid message: missing type"},
		{`{"type":"pack","nodes":"%%%"}`, "invalid pack: nodes is not standard base64: illegal base64 data at input byte 0"},
		{`{"type":"pack"}`, "invalid pack: missing nodes"},
		{`{"type":"request","known":["xyz"]}`, "invalid request: known entry 0 must be 64 hex characters"},
		{`{"type":"subscribe","patterns":"**"}`, "invalid subscribe: patterns must be an array of strings"},
	} {
		if err := c.SendRaw(stepCtx(t), []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		e, err := expect(t, c, protocol.TypeError).AsError()
		if err != nil || e.Msg != tc.msg {
			t.Fatalf("%s: error %+v, want %q", tc.frame, e, tc.msg)
		}
	}
	// Unknown types are ignored; the socket still works.
	if err := c.SendRaw(stepCtx(t), []byte(`{"type":"from-the-future","x":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(stepCtx(t), protocol.Subscribe{Patterns: []string{"a/*", "b/**"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := expect(t, c, protocol.TypeSubscribeAck).AsSubscribeAck()
	if err != nil || len(ack.Patterns) != 2 || ack.Patterns[1] != "b/**" {
		t.Fatalf("subscribe-ack = %+v %v", ack, err)
	}
}

func TestFrameOverLimitCloses1009(t *testing.T) {
	h := newHarness(t, dataplane.Config{MaxFrameBytes: 4096})
	c := h.dial(t, "r", client.Options{})
	ok := `{"type":"x","pad":"` + strings.Repeat("a", 4000) + `"}`
	if err := c.SendRaw(stepCtx(t), []byte(ok)); err != nil {
		t.Fatal(err)
	}
	barrier(t, c) // a frame under the limit is fine
	big := `{"type":"x","pad":"` + strings.Repeat("a", 200<<10) + `"}`
	// The server may close before the client has finished writing the
	// frame, so the send itself may fail; the close code is what counts.
	_ = c.SendRaw(stepCtx(t), []byte(big))
	expectClose(t, c, 1009, "message too big")
}

func TestAdmissionHookRefuses(t *testing.T) {
	h := newHarness(t, dataplane.Config{Admission: func(room string, hello *protocol.Hello) (*dataplane.Grant, error) {
		if room == "locked" {
			return nil, errors.New("auth: room is locked — include a capability token in hello")
		}
		return nil, nil
	}})
	_, err := client.Dial(stepCtx(t), h.url("locked"), client.Options{Key: newKey(t)})
	var he *client.HelloError
	if !errors.As(err, &he) || he.Msg != "auth: room is locked — include a capability token in hello" {
		t.Fatalf("dial locked room: %v", err)
	}
	if code, _, ok := client.CloseError(err); !ok || code != 1008 {
		t.Fatalf("close code = %d (%v)", code, err)
	}
	h.dial(t, "open", client.Options{})
}

func TestRoomNamesAndOrigins(t *testing.T) {
	h := newHarness(t, dataplane.Config{AllowedOrigins: []string{"https://app.example.com/"}})
	get := func(path string, origin string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(stepCtx(t), http.MethodGet, h.hs.URL+path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, p := range []string{"/ws/", "/ws/a%2Fb", "/ws/a/b", "/ws/" + strings.Repeat("r", 129), "/ws/%20x", "/ws/caf%C3%A9"} {
		if code, body := get(p, ""); code != http.StatusBadRequest || !strings.Contains(body, "invalid room name") {
			t.Errorf("GET %s = %d %q", p, code, body)
		}
	}
	// A valid name that is not a WebSocket request reaches the upgrader.
	if code, _ := get("/ws/"+strings.Repeat("r", 128), ""); code != http.StatusBadRequest {
		t.Errorf("plain GET of a valid room = %d", code)
	}
	if code, body := get("/ws/r", "https://evil.example"); code != http.StatusForbidden || !strings.Contains(body, "allowed-origins") {
		t.Errorf("foreign origin = %d %q", code, body)
	}
	if code, _ := get("/elsewhere", ""); code != http.StatusNotFound {
		t.Errorf("other path = %d", code)
	}

	h.dial(t, "Room-1.x~:@!$&'()*+,;=_", client.Options{})
	h.dial(t, "r", client.Options{Header: http.Header{"Origin": {"https://APP.example.com"}}})
	h.dial(t, "r", client.Options{Header: http.Header{"Origin": {h.hs.URL}}}) // same host
	if _, err := client.Dial(stepCtx(t), h.url("r"), client.Options{Key: newKey(t), Header: http.Header{"Origin": {"http://app.example.com"}}}); err == nil {
		t.Fatal("origin with another scheme was allowed")
	}
}

func TestNewServerValidatesConfig(t *testing.T) {
	if _, err := dataplane.NewServer(dataplane.Config{}); err == nil {
		t.Fatal("accepted a config without ServerKey")
	}
	if _, err := dataplane.NewServer(dataplane.Config{ServerKey: newKey(t), AllowedOrigins: []string{"app.example.com"}}); err == nil ||
		!strings.Contains(err.Error(), "app.example.com") {
		t.Fatalf("bad origin: %v", err)
	}
	if _, err := dataplane.NewServer(dataplane.Config{ServerKey: newKey(t), BroadcastCapacity: -1}); err == nil {
		t.Fatal("accepted a negative queue")
	}
}
