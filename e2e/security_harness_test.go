package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/pki"
)

// secOptions shape the cluster of one security test.
type secOptions struct {
	// wss makes every public listener serve TLS with a certificate from
	// the cluster CA tooling, reloaded from disk every 200 ms.
	wss bool
	// flags are extra `serve` flags for every node.
	flags []string
}

// secCluster is a three-node cluster for the security suite: the shared
// cluster harness plus a metrics listener per node and, with wss, the
// public certificates and the roots that verify them.
type secCluster struct {
	*cluster
	metrics []string // each node's --metrics-addr
	flags   [][]string
	// wss only: each node's public certificate folder and the pool
	// holding the cluster CA that signed them.
	wsCerts []string
	roots   *x509.CertPool
}

// wsReloadInterval is how often wss nodes re-read their certificate files:
// short, so a replaced certificate shows within a test's patience.
const wsReloadInterval = "200ms"

// startSecCluster is startCluster with per-node flags (metrics listener,
// wss, rate limits): startCluster has no way to pass them, and the
// harness's cluster methods are reused as they are.
func startSecCluster(t *testing.T, o secOptions) *secCluster {
	t.Helper()
	sc := &secCluster{}
	startClusterWith(t, 3, 1, func(c *cluster, i int, ports []string) []string {
		sc.cluster = c
		if o.wss && sc.roots == nil {
			sc.roots = x509.NewCertPool()
			if !sc.roots.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(c.ca, "ca.pem")))) {
				t.Fatal("cluster CA file holds no certificate")
			}
		}
		sc.metrics = append(sc.metrics, ports[0])
		flags := append([]string{"--metrics-addr", ports[0]}, o.flags...)
		if o.wss {
			dir := filepath.Join(c.nodes[i].work, "public-tls")
			sc.issueWSCert(dir, c.nodes[i].id)
			sc.wsCerts = append(sc.wsCerts, dir)
			flags = append(flags, "--ws-tls-cert", filepath.Join(dir, "node.pem"), "--ws-tls-key", filepath.Join(dir, "node-key.pem"),
				"--tls-reload-interval", wsReloadInterval)
		}
		sc.flags = append(sc.flags, flags)
		return flags
	})
	return sc
}

// issueWSCert writes a public-listener certificate for 127.0.0.1 into dir
// with the cluster CA tooling (node.pem, node-key.pem).
func (sc *secCluster) issueWSCert(dir, name string) {
	sc.t.Helper()
	sc.cli("cert", "create-node", "--ca-dir", sc.ca, "--dir", dir, "--node-id", "public-"+name, "--hosts", "127.0.0.1,localhost")
}

// wsURL is the room URL on node i's public listener.
func (sc *secCluster) wsURL(i int, room string) string {
	scheme := "ws"
	if sc.roots != nil {
		scheme = "wss"
	}
	return scheme + "://" + sc.nodes[i].public + "/ws/" + room
}

// clientTLS verifies the public certificate chain against the cluster CA;
// nil for a ws:// cluster.
func (sc *secCluster) clientTLS() *tls.Config {
	if sc.roots == nil {
		return nil
	}
	return &tls.Config{RootCAs: sc.roots, MinVersion: tls.VersionTLS12}
}

// adminConn dials node i's admin port with the operator certificate and
// jwt as the bearer token; closed when the test ends.
func (sc *secCluster) adminConn(i int, jwt string) *grpc.ClientConn {
	sc.t.Helper()
	cc, err := grpc.NewClient(sc.nodes[i].admin,
		grpc.WithTransportCredentials(credentials.NewTLS(sc.ops.ClientConfig(""))),
		grpc.WithPerRPCCredentials(bearerToken(jwt)))
	if err != nil {
		sc.t.Fatalf("dial %s: %v", sc.nodes[i].admin, err)
	}
	sc.t.Cleanup(func() { cc.Close() })
	return cc
}

// nodeConn dials node i's admin port as node j, with j's node certificate
// and no token: the only holder of cluster.node.
func (sc *secCluster) nodeConn(i, j int) *grpc.ClientConn {
	sc.t.Helper()
	d := sc.nodes[j].certs
	m, err := pki.Load(filepath.Join(d, "ca.pem"), filepath.Join(d, "node.pem"), filepath.Join(d, "node-key.pem"))
	if err != nil {
		sc.t.Fatalf("load node certificate of %s: %v", sc.nodes[j].id, err)
	}
	cc, err := grpc.NewClient(sc.nodes[i].admin, grpc.WithTransportCredentials(credentials.NewTLS(m.ClientConfig(""))))
	if err != nil {
		sc.t.Fatalf("dial %s: %v", sc.nodes[i].admin, err)
	}
	sc.t.Cleanup(func() { cc.Close() })
	return cc
}

// rpc runs one admin call, retrying while the cluster answers UNAVAILABLE
// (an election, a forward in flight), which SPEC makes retryable.
func rpc[T any](call func(ctx context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
		resp, err := call(ctx)
		cancel()
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			return resp, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// must is rpc for calls that must succeed.
func must[T any](t *testing.T, what string, call func(ctx context.Context) (T, error)) T {
	t.Helper()
	resp, err := rpc(call)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return resp
}

// tokens is node i's TokenService with the bootstrap token.
func (sc *secCluster) tokens(i int) adminv1.TokenServiceClient {
	return adminv1.NewTokenServiceClient(sc.conn(i))
}

func (sc *secCluster) rooms(i int) adminv1.RoomServiceClient {
	return adminv1.NewRoomServiceClient(sc.conn(i))
}

func (sc *secCluster) keys(i int) adminv1.KeyServiceClient {
	return adminv1.NewKeyServiceClient(sc.conn(i))
}

func (sc *secCluster) audit(i int) adminv1.AuditServiceClient {
	return adminv1.NewAuditServiceClient(sc.conn(i))
}

// waitRoomMode waits until every node's own applied state (a stale read)
// shows room locked in mode: admission reads the local replica, so a test
// that expects refusals on every node must wait for all of them.
func (sc *secCluster) waitRoomMode(room, mode string) {
	sc.t.Helper()
	for i := range sc.nodes {
		var last string
		sc.eventually(fmt.Sprintf("room %s in mode %s on %s", room, mode, sc.nodes[i].id), func() bool {
			ctx, cancel := context.WithTimeout(staleRead(context.Background()), rpcTimeout)
			defer cancel()
			d, err := sc.rooms(i).DescribeRoom(ctx, &adminv1.DescribeRoomRequest{Room: room})
			if err != nil {
				last = err.Error()
				return false
			}
			last = d.GetMode()
			return d.GetMode() == mode
		}, func() string { return last })
	}
}

// waitAppliedEverywhere waits until every node has applied index idx, so a
// replicated change (a key, a revocation) is in force on each of them.
func (sc *secCluster) waitAppliedEverywhere(idx uint64) {
	sc.t.Helper()
	for i := range sc.nodes {
		var last uint64
		sc.eventually(fmt.Sprintf("index %d applied on %s", idx, sc.nodes[i].id), func() bool {
			last = sc.appliedIndex(i)
			return last >= idx
		}, func() string { return fmt.Sprint(last) })
	}
}

// allStderr is every node's log so far.
func (sc *secCluster) allStderr() []string {
	out := make([]string, len(sc.nodes))
	for i := range sc.nodes {
		out[i] = sc.stderr(i)
	}
	return out
}

// replaceFile writes data to path atomically (temp file + rename), the way
// certificate managers renew files, so a reader never sees half a file.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
