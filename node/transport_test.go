package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nodalmerge/nodalmerge-go/client"
	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// reloadEvery is the --tls-reload-interval of these tests.
const reloadEvery = 20 * time.Millisecond

// eventually polls cond until it holds or 15 s have passed. The reload
// poller has no completion signal a client could see other than the
// certificate a new handshake presents, so that is what is polled.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(reloadEvery)
	}
}

// fileSerial is the serial of the first certificate in a PEM file.
func fileSerial(t *testing.T, path string) *big.Int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

// servedSerial makes one new TLS handshake to addr and returns the serial
// of the certificate the server presented.
func servedSerial(t *testing.T, addr string, cfg *tls.Config) *big.Int {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// webCert makes a CA and a server certificate for 127.0.0.1 signed by it,
// standing in for the public (browser-facing) certificate.
func webCert(t *testing.T) (caDir, certDir string, pool *x509.CertPool) {
	t.Helper()
	caDir, certDir = t.TempDir(), t.TempDir()
	if err := pki.CreateCA(caDir); err != nil {
		t.Fatal(err)
	}
	if err := pki.CreateNode(caDir, certDir, "web", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(caDir, pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("CA PEM not parsed")
	}
	return caDir, certDir, pool
}

// lockedBuffer collects log or banner output written from other goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wsJoin dials url with gorilla, sends hello and reads the welcome. It
// returns the connection and the serial of the certificate it was served.
func wsJoin(t *testing.T, ctx context.Context, url string, tlsCfg *tls.Config) (*websocket.Conn, *big.Int) {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: tlsCfg, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	tc, ok := ws.NetConn().(*tls.Conn)
	if !ok {
		t.Fatalf("%s: connection is %T, not TLS", url, ws.NetConn())
	}
	key, err := client.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	hello, err := json.Marshal(protocol.Hello{Pubkey: hex.EncodeToString(key.Public().(ed25519.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	if typ := wsNextType(t, ws); typ != protocol.TypeWelcome {
		t.Fatalf("answer to hello: %q, want welcome", typ)
	}
	return ws, tc.ConnectionState().PeerCertificates[0].SerialNumber
}

func wsNextType(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var env struct{ Type string }
	if err := json.Unmarshal(msg, &env); err != nil {
		t.Fatalf("bad frame %q: %v", msg, err)
	}
	return env.Type
}

// TestWSSJoinAndCertificateReload: with --ws-tls-cert/--ws-tls-key the
// public listener speaks wss:// (banner and log say so); a gorilla client
// trusting the CA joins a room; replacing the files on disk makes new
// connections see the new certificate while an established session keeps
// working.
func TestWSSJoinAndCertificateReload(t *testing.T) {
	caDir, certDir, pool := webCert(t)
	cert, key := filepath.Join(certDir, pki.NodeFile), filepath.Join(certDir, pki.NodeKeyFile)
	first := fileSerial(t, cert)

	banner, logs := &lockedBuffer{}, &lockedBuffer{}
	cfg := testConfig(t.TempDir())
	cfg.WSTLSCert, cfg.WSTLSKey, cfg.TLSReloadInterval = cert, key, reloadEvery
	cfg.Banner = banner
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if !strings.Contains(banner.String(), "wss://"+n.PublicAddr()+"/ws/{room}") {
		t.Errorf("banner does not show the wss:// URL:\n%s", banner.String())
	}
	if !strings.Contains(logs.String(), "public=wss://"+n.PublicAddr()) {
		t.Errorf("start log does not say wss://:\n%s", logs.String())
	}

	url := "wss://" + n.PublicAddr() + "/ws/tls-room"
	clientTLS := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	old, serial := wsJoin(t, ctx, url, clientTLS)
	if serial.Cmp(first) != 0 {
		t.Fatalf("served serial %v, want %v", serial, first)
	}
	// Plain ws:// to the TLS port is not a WebSocket.
	if ws, _, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).DialContext(ctx, "ws://"+n.PublicAddr()+"/ws/tls-room", nil); err == nil {
		ws.Close()
		t.Fatal("plain ws:// upgrade succeeded on the wss:// listener")
	}

	// Renew the certificate in place, as certbot or cert-manager would.
	if err := pki.CreateNode(caDir, certDir, "web", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	second := fileSerial(t, cert)
	eventually(t, "renewed public certificate served", func() bool {
		return servedSerial(t, n.PublicAddr(), clientTLS).Cmp(second) == 0
	})
	_, serial = wsJoin(t, ctx, url, clientTLS)
	if serial.Cmp(second) != 0 {
		t.Fatalf("new connection served serial %v, want the renewed %v", serial, second)
	}

	// The session from before the renewal is still served: a command gets
	// its answer on it.
	if err := old.WriteMessage(websocket.TextMessage, []byte(`{"type":"get-policy"}`)); err != nil {
		t.Fatalf("old session after reload: %v", err)
	}
	for typ := wsNextType(t, old); typ != protocol.TypeError; typ = wsNextType(t, old) {
		// Room events (the second session's peer-joined) may come first.
		if !strings.HasPrefix(typ, "peer-") {
			t.Fatalf("old session answer %q, want the deny error", typ)
		}
	}
	if !strings.Contains(logs.String(), "public TLS certificate reloaded") {
		t.Errorf("reload not logged:\n%s", logs.String())
	}

	// A broken renewal keeps the certificate in use and logs a warning
	// that names the file, never the key.
	if err := os.WriteFile(key, []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "broken key reported", func() bool { return strings.Contains(logs.String(), "keeping the material in use") })
	if s := logs.String(); strings.Contains(s, "c2VjcmV0") || !strings.Contains(s, key) {
		t.Errorf("warning quotes the key or does not name the file:\n%s", s)
	}
	if got := servedSerial(t, n.PublicAddr(), clientTLS); got.Cmp(second) != 0 {
		t.Fatalf("after a broken renewal the listener serves %v, want %v", got, second)
	}
}

// TestInternalTLSReload: a renewed node certificate is presented by new
// handshakes on the admin and Raft ports without restart, and a CA bundle
// that adds a new CA makes an operator certificate of that CA accepted.
func TestInternalTLSReload(t *testing.T) {
	p := pkitest.New(t)
	cfg := clusterConfig(t, p, "n1")
	cfg.TLSReloadInterval = reloadEvery
	n := startNode(t, cfg)
	caFile, certFile, _ := p.Files("n1")

	opTLS := p.Operator(t, "ops").ClientConfig("")
	peerTLS := p.Node(t, "n2").ClientConfig("")
	first := fileSerial(t, certFile)
	if got := servedSerial(t, n.AdminAddr(), opTLS); got.Cmp(first) != 0 {
		t.Fatalf("admin port serves %v, want %v", got, first)
	}

	if err := pki.CreateNode(p.Dir, filepath.Dir(certFile), "n1", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	renewed := fileSerial(t, certFile)
	eventually(t, "renewed node certificate on the admin port", func() bool {
		return servedSerial(t, n.AdminAddr(), opTLS).Cmp(renewed) == 0
	})
	if got := servedSerial(t, n.RaftAddr(), peerTLS); got.Cmp(renewed) != 0 {
		t.Fatalf("raft port serves %v, want the renewed %v", got, renewed)
	}
	if got := n.TLS().Leaf().SerialNumber; got.Cmp(renewed) != 0 {
		t.Fatalf("dialers would present %v, want the renewed %v", got, renewed)
	}

	// An operator of a new CA, trusting both CAs.
	tok, err := os.ReadFile(n.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	newCA := pkitest.New(t)
	newCA.Operator(t, "ops2")
	bundle := append(readFile(t, caFile), readFile(t, filepath.Join(newCA.Dir, pki.CAFile))...)
	opCA, opCert, opKey := newCA.Files("ops2")
	if err := os.WriteFile(opCA, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	op2, err := pki.Load(opCA, opCert, opKey)
	if err != nil {
		t.Fatal(err)
	}
	status := func() error {
		conn, err := grpc.NewClient(n.AdminAddr(), grpc.WithTransportCredentials(credentials.NewTLS(op2.ClientConfig(""))))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(withToken(context.Background(), strings.TrimSpace(string(tok))), 5*time.Second)
		defer cancel()
		_, err = adminv1.NewClusterServiceClient(conn).GetStatus(ctx, &adminv1.GetStatusRequest{})
		return err
	}
	if err := status(); err == nil {
		t.Fatal("operator of a CA the node does not trust was accepted")
	}
	if err := os.WriteFile(caFile, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "operator of the new CA accepted", func() bool { return status() == nil })
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPublicListenerServesOnlyRooms: metrics, health, profiles and gRPC
// exist on their own listeners only; the public one (ws:// and wss://)
// answers 404 for those paths and fails a gRPC call.
func TestPublicListenerServesOnlyRooms(t *testing.T) {
	_, certDir, pool := webCert(t)
	for _, wss := range []bool{false, true} {
		name := map[bool]string{false: "ws", true: "wss"}[wss]
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.Pprof = true
			httpc := &http.Client{Timeout: 10 * time.Second}
			scheme := "http"
			if wss {
				cfg.WSTLSCert, cfg.WSTLSKey = filepath.Join(certDir, pki.NodeFile), filepath.Join(certDir, pki.NodeKeyFile)
				httpc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
				defer httpc.CloseIdleConnections()
				scheme = "https"
			}
			n := startNode(t, cfg)
			get := func(c *http.Client, url string) int {
				t.Helper()
				resp, err := c.Get(url)
				if err != nil {
					t.Fatalf("GET %s: %v", url, err)
				}
				defer resp.Body.Close()
				_, _ = io.Copy(io.Discard, resp.Body)
				return resp.StatusCode
			}
			for _, p := range []string{"/metrics", "/healthz", "/readyz", "/debug/pprof/"} {
				if code := get(http.DefaultClient, "http://"+n.MetricsAddr()+p); code != http.StatusOK {
					t.Errorf("metrics listener %s = %d, want 200", p, code)
				}
				if code := get(httpc, scheme+"://"+n.PublicAddr()+p); code != http.StatusNotFound {
					t.Errorf("public listener %s = %d, want 404", p, code)
				}
			}

			tok, err := os.ReadFile(n.TokenPath())
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(n.StateDir(), "tls")
			op, err := pki.Load(filepath.Join(dir, pki.CAFile), filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator-key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			for credName, creds := range map[string]credentials.TransportCredentials{
				"mtls":       credentials.NewTLS(op.ClientConfig("")),
				"plaintext":  insecure.NewCredentials(),
				"server-tls": credentials.NewTLS(&tls.Config{RootCAs: pool}),
			} {
				conn, err := grpc.NewClient(n.PublicAddr(), grpc.WithTransportCredentials(creds))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(withToken(context.Background(), strings.TrimSpace(string(tok))), 5*time.Second)
				_, err = adminv1.NewClusterServiceClient(conn).GetStatus(ctx, &adminv1.GetStatusRequest{})
				cancel()
				conn.Close()
				if err == nil {
					t.Errorf("gRPC GetStatus (%s) on the public listener succeeded", credName)
				}
			}
		})
	}
}

// TestTrustedProxiesReachTheDataPlane: --trusted-proxies is passed on, so
// an https page behind a TLS-terminating proxy on 127.0.0.1 may connect.
func TestTrustedProxiesReachTheDataPlane(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MetricsAddr = ""
	cfg.TrustedProxies = []string{"127.0.0.1"}
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key, err := client.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	origin := "https://" + n.PublicAddr()
	url := "ws://" + n.PublicAddr() + "/ws/proxied"
	if _, err := client.Dial(ctx, url, client.Options{Key: key, Header: http.Header{"Origin": {origin}}}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("https page without X-Forwarded-Proto: %v, want 403", err)
	}
	c, err := client.Dial(ctx, url, client.Options{Key: key, Header: http.Header{"Origin": {origin}, "X-Forwarded-Proto": {"https"}}})
	if err != nil {
		t.Fatalf("https page behind the trusted proxy: %v", err)
	}
	c.Close()
}

// TestTransportConfigRefused: bad transport settings fail validation with
// their flags named; kernel-chosen ports never count as shared.
func TestTransportConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		flags []string
	}{
		{"cert without key", func(c *Config) { c.WSTLSCert = "/x/cert.pem" }, []string{"--ws-tls-key"}},
		{"key without cert", func(c *Config) { c.WSTLSKey = "/x/key.pem" }, []string{"--ws-tls-cert"}},
		{"negative reload", func(c *Config) { c.TLSReloadInterval = -time.Second }, []string{"--tls-reload-interval"}},
		{"bad CIDR", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/40"} }, []string{"--trusted-proxies", "10.0.0.0/40"}},
		{"metrics on listen", func(c *Config) { c.Listen, c.MetricsAddr = "127.0.0.1:7001", "127.0.0.1:7001" }, []string{"--metrics-addr", "--listen"}},
		{"metrics on admin", func(c *Config) { c.AdminListen, c.MetricsAddr = "127.0.0.1:7002", "127.0.0.1:7002" }, []string{"--metrics-addr", "--admin-listen"}},
		{"admin on listen", func(c *Config) { c.Listen, c.AdminListen = "127.0.0.1:7003", "127.0.0.1:7003" }, []string{"--admin-listen", "--listen"}},
		{"wildcard covers loopback", func(c *Config) { c.Listen, c.MetricsAddr = "0.0.0.0:7004", "127.0.0.1:7004" }, []string{"--metrics-addr", "--listen"}},
		{"empty host covers all", func(c *Config) { c.Listen, c.AdminListen = ":7005", "[::1]:7005" }, []string{"--admin-listen", "--listen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			tc.edit(&cfg)
			cfg.applyDefaults()
			err := cfg.validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, f := range tc.flags {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
		})
	}
	ok := testConfig(t.TempDir())
	ok.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1", "fd00::/8"}
	ok.Listen, ok.MetricsAddr = "127.0.0.1:7006", "127.0.0.2:7006" // different hosts
	ok.applyDefaults()
	if err := ok.validate(); err != nil {
		t.Fatalf("valid transport config refused: %v", err)
	}
}

// TestBadPublicCertificateFailsStart: an unreadable --ws-tls-cert fails the
// start by name and leaves the public port free.
func TestBadPublicCertificateFailsStart(t *testing.T) {
	addr := freeLoopbackAddr(t)
	cfg := testConfig(t.TempDir())
	cfg.Listen = addr
	cfg.WSTLSCert, cfg.WSTLSKey = filepath.Join(t.TempDir(), "missing.pem"), filepath.Join(t.TempDir(), "missing-key.pem")
	if _, err := Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--ws-tls-cert") {
		t.Fatalf("Start = %v, want an error naming --ws-tls-cert", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("public port still bound after a failed start: %v", err)
	}
	l.Close()
}
