package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nodalmerge/nodalmerge-go/client"
	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// TestChecklist1_ConfirmWSSPathAndTLSTermination: with --ws-tls-cert and
// --ws-tls-key every node's public listener is wss:// with a certificate
// from the cluster CA tooling; clients verify the chain (one that does not
// trust the CA fails), plain ws:// to the port fails, and a certificate
// replaced on disk is what new connections get, without a restart, while
// sessions opened before go on.
func TestChecklist1_ConfirmWSSPathAndTLSTermination(t *testing.T) {
	sc := startSecCluster(t, secOptions{wss: true})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const room = "e2e-wss"

	before := make([]*wsSession, len(sc.nodes))
	for i := range sc.nodes {
		want := certSerial(t, filepath.Join(sc.wsCerts[i], "node.pem"))
		if got, err := sc.presentedSerial(i); err != nil || got.Cmp(want) != 0 {
			t.Fatalf("%s presents serial %v (%v), want its public certificate %v", sc.nodes[i].id, got, err, want)
		}
		_, key := newKey(t)
		var seen verifiedLeaf
		conn, err := client.Dial(ctx, sc.wsURL(i, room), client.Options{Key: key, PeerID: "wss", TLS: seen.config(sc.roots)})
		if err != nil {
			t.Fatalf("wss join on %s: %v", sc.nodes[i].id, err)
		}
		conn.Close()
		if s := seen.serial(); s == nil || s.Cmp(want) != 0 {
			t.Errorf("wss client on %s verified serial %v, want %v", sc.nodes[i].id, s, want)
		}
		before[i] = sc.mustJoin(ctx, i, room, fmt.Sprintf("before-%d", i), key, nil)

		// Plain ws:// to the TLS port never becomes a session.
		if c, err := client.Dial(ctx, "ws://"+sc.nodes[i].public+"/ws/"+room, client.Options{Key: key}); err == nil {
			c.Close()
			t.Errorf("plain ws:// to %s's wss port was admitted", sc.nodes[i].id)
		} else {
			t.Logf("ws:// to %s's wss port: %v", sc.nodes[i].id, err)
		}
		// A client that does not trust the cluster CA fails verification.
		var uae x509.UnknownAuthorityError
		if c, err := client.Dial(ctx, sc.wsURL(i, room), client.Options{Key: key, TLS: &tls.Config{RootCAs: x509.NewCertPool()}}); err == nil {
			c.Close()
			t.Errorf("a client without the CA joined %s over wss", sc.nodes[i].id)
		} else if !errors.As(err, &uae) {
			t.Errorf("a client without the CA on %s: %v, want an unknown-authority verification error", sc.nodes[i].id, err)
		}
	}

	// Renew every node's public certificate on disk (new key, new serial,
	// same CA): each node serves the new one to new connections.
	renewed := make([]*big.Int, len(sc.nodes))
	nextDirs := make([]string, len(sc.nodes))
	for i := range sc.nodes {
		nextDirs[i] = filepath.Join(sc.dir, fmt.Sprintf("renewed-%d", i))
		sc.issueWSCert(nextDirs[i], sc.nodes[i].id+"-renewed")
		renewed[i] = certSerial(t, filepath.Join(nextDirs[i], "node.pem"))
	}
	start := time.Now()
	for i, next := range nextDirs {
		for _, f := range []string{"node-key.pem", "node.pem"} {
			b, err := os.ReadFile(filepath.Join(next, f))
			if err != nil {
				t.Fatal(err)
			}
			replaceFile(t, filepath.Join(sc.wsCerts[i], f), b)
		}
	}
	for i := range sc.nodes {
		var last string
		sc.eventually(fmt.Sprintf("the renewed certificate on %s", sc.nodes[i].id), func() bool {
			got, err := sc.presentedSerial(i)
			last = fmt.Sprint(got, err)
			return err == nil && got.Cmp(renewed[i]) == 0
		}, func() string { return last })
	}
	t.Logf("renewed public certificates served by all nodes %s after the files were replaced (reload interval %s)",
		time.Since(start).Round(time.Millisecond), wsReloadInterval)
	for i := range sc.nodes {
		_, key := newKey(t)
		var seen verifiedLeaf
		conn, err := client.Dial(ctx, sc.wsURL(i, room), client.Options{Key: key, PeerID: "after", TLS: seen.config(sc.roots)})
		if err != nil {
			t.Fatalf("wss join on %s after renewal: %v", sc.nodes[i].id, err)
		}
		conn.Close()
		if s := seen.serial(); s == nil || s.Cmp(renewed[i]) != 0 {
			t.Errorf("wss client on %s after renewal verified serial %v, want %v", sc.nodes[i].id, s, renewed[i])
		}
		// The session from before the renewal is untouched.
		before[i].alive(ctx, t)
	}
}

// verifiedLeaf records the leaf of the chain a TLS client verified.
type verifiedLeaf struct {
	mu   sync.Mutex
	leaf *x509.Certificate
}

func (v *verifiedLeaf) config(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, VerifyConnection: func(cs tls.ConnectionState) error {
		if len(cs.VerifiedChains) == 0 {
			return errors.New("no verified chain")
		}
		v.mu.Lock()
		v.leaf = cs.VerifiedChains[0][0]
		v.mu.Unlock()
		return nil
	}}
}

func (v *verifiedLeaf) serial() *big.Int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.leaf == nil {
		return nil
	}
	return v.leaf.SerialNumber
}

// presentedSerial opens a new verified TLS connection to node i's public
// port and answers the serial of the certificate it presents.
func (sc *secCluster) presentedSerial(i int) (*big.Int, error) {
	d := &net.Dialer{Timeout: rpcTimeout}
	conn, err := tls.DialWithDialer(d, "tcp", sc.nodes[i].public, &tls.Config{RootCAs: sc.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// certSerial reads the serial of the first certificate in a PEM file.
func certSerial(t *testing.T, path string) *big.Int {
	t.Helper()
	block, _ := pem.Decode([]byte(readFile(t, path)))
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c.SerialNumber
}

// TestChecklist4_MetricsAndAdminNotPublic: the public port answers 404 for
// the metrics, health and profiling paths (they live on --metrics-addr)
// and carries no gRPC; the admin port refuses a client without a cluster
// certificate, and one with a certificate from another CA, at the TLS
// handshake.
func TestChecklist4_MetricsAndAdminNotPublic(t *testing.T) {
	sc := startSecCluster(t, secOptions{})
	other := filepath.Join(sc.dir, "other-ca")
	sc.cli("cert", "create-ca", "--dir", other)
	sc.cli("cert", "create-client", "--ca-dir", other, "--dir", filepath.Join(sc.dir, "mallory"), "--name", "mallory")
	mallory, err := tls.LoadX509KeyPair(filepath.Join(sc.dir, "mallory", "mallory.pem"), filepath.Join(sc.dir, "mallory", "mallory-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(sc.ca, "ca.pem"))))

	for i, nd := range sc.nodes {
		for _, path := range []string{"/metrics", "/healthz", "/readyz", "/debug/pprof/", "/debug/pprof/cmdline"} {
			if _, code, err := httpGet("http://"+nd.public+path, nil); err != nil || code != http.StatusNotFound {
				t.Errorf("%s public GET %s: HTTP %d, %v; want 404", nd.id, path, code, err)
			}
		}
		// They exist, on the metrics listener.
		m := sc.scrape(i)
		if _, ok := metricValue(m, "nodalmerge_token_expired_disconnects_total"); !ok {
			t.Errorf("%s metrics listener lacks nodalmerge_token_expired_disconnects_total", nd.id)
		}
		if _, code, err := httpGet("http://"+sc.metrics[i]+"/healthz", nil); err != nil || code != http.StatusOK {
			t.Errorf("%s metrics listener /healthz: HTTP %d, %v", nd.id, code, err)
		}

		// No gRPC on the public port: neither as plaintext HTTP/2 nor
		// with the operator's TLS, although the credentials are the ones
		// that work on the admin port.
		for _, mode := range []string{"plaintext", "operator TLS"} {
			code, msg := publicGRPC(t, nd.public, mode, sc)
			switch code {
			case codes.OK, codes.Unauthenticated, codes.PermissionDenied:
				t.Errorf("%s public port answered gRPC (%s): %v %s", nd.id, mode, code, msg)
			}
		}

		// The admin port: the operator certificate works, none or a
		// foreign one fails in the TLS handshake.
		if _, err := rpc(func(ctx context.Context) (*adminv1.GetStatusResponse, error) {
			return sc.clusterClient(i).GetStatus(ctx, &adminv1.GetStatusRequest{})
		}); err != nil {
			t.Fatalf("%s admin with the operator certificate: %v", nd.id, err)
		}
		for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "another CA's certificate": {mallory}} {
			err := tlsExchange(nd.admin, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: certs, MinVersion: tls.VersionTLS12})
			if err == nil || !strings.Contains(err.Error(), "tls:") {
				t.Errorf("%s admin port with %s: %v, want a TLS handshake failure", nd.id, name, err)
			}
		}
	}
}

// publicGRPC calls ClusterService.GetStatus on addr (a public port) with
// the bootstrap token, in plaintext HTTP/2 or with the operator's TLS, and
// answers the status.
func publicGRPC(t *testing.T, addr, mode string, sc *secCluster) (codes.Code, string) {
	t.Helper()
	creds := insecure.NewCredentials()
	if mode != "plaintext" {
		creds = credentials.NewTLS(sc.ops.ClientConfig(""))
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+sc.token), rpcTimeout)
	defer cancel()
	_, err = adminv1.NewClusterServiceClient(cc).GetStatus(ctx, &adminv1.GetStatusRequest{})
	st := status.Convert(err)
	return st.Code(), st.Message()
}

// tlsExchange completes a TLS handshake with addr and sends the HTTP/2
// preface, reading the answer: under TLS 1.3 a server that refuses the
// client certificate says so after the client's side of the handshake, on
// the first read.
func tlsExchange(addr string, cfg *tls.Config) error {
	d := &net.Dialer{Timeout: rpcTimeout}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(rpcTimeout))
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	_, err = conn.Read(buf)
	return err
}
