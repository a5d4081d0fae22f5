package e2e

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/pki"
)

// Cluster timing. Elections take a few hundred milliseconds; a race-built
// process on a loaded 2-core machine needs a few seconds to start.
const (
	clusterWait = 60 * time.Second // a condition across the cluster
	rpcTimeout  = 5 * time.Second  // one admin call
	pollEvery   = 50 * time.Millisecond
)

// cluster is a set of `nodalmerge serve` processes forming one Raft
// cluster with certificates from `nodalmerge cert`, driven through typed
// gRPC clients holding an operator certificate and the bootstrap token.
type cluster struct {
	t     *testing.T
	dir   string
	ca    string // CA folder (ca.pem, ca-key.pem)
	ops   *pki.Material
	token string
	nodes []*clusterNode
}

// clusterNode is one member: its identity, folders and fixed ports, so a
// restart comes back at the addresses the others know.
type clusterNode struct {
	id                  string
	certs, store, work  string
	public, admin, raft string

	mu   sync.Mutex
	srv  *server // nil while down
	conn *grpc.ClientConn
}

// startCluster makes a CA, node and operator certificates with the cert
// commands, starts node 1 with --bootstrap and the others with --join, and
// waits until ListMembers shows n voters. Every process is killed and every
// connection closed when the test ends.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return startClusterWith(t, n, 0, nil)
}

// startClusterWith is startCluster with extra `serve` flags per node:
// nodeFlags(c, i, ports) is called for each node once its certificates
// exist (and before any node starts), with extraPorts free loopback ports
// reserved for that node (a metrics listener, say), and answers the flags
// node i starts with.
func startClusterWith(t *testing.T, n, extraPorts int, nodeFlags func(c *cluster, i int, ports []string) []string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	c.ca = filepath.Join(c.dir, "ca")
	opsDir := filepath.Join(c.dir, "ops")
	c.cli("cert", "create-ca", "--dir", c.ca)
	c.cli("cert", "create-client", "--ca-dir", c.ca, "--dir", opsDir, "--name", "operator")
	ops, err := pki.Load(filepath.Join(opsDir, "ca.pem"), filepath.Join(opsDir, "operator.pem"), filepath.Join(opsDir, "operator-key.pem"))
	if err != nil {
		t.Fatalf("load operator certificate: %v", err)
	}
	c.ops = ops

	per := 3 + extraPorts
	ports := freeLoopbackPorts(t, per*n)
	flags := make([][]string, n)
	for i := range n {
		p := ports[per*i : per*(i+1)]
		nd := &clusterNode{
			id:     fmt.Sprintf("n%d", i+1),
			public: p[0], admin: p[1], raft: p[2],
		}
		base := filepath.Join(c.dir, nd.id)
		nd.certs, nd.store, nd.work = filepath.Join(base, "tls"), filepath.Join(base, "store"), base
		c.cli("cert", "create-node", "--ca-dir", c.ca, "--dir", nd.certs, "--node-id", nd.id, "--hosts", "127.0.0.1,localhost")
		c.nodes = append(c.nodes, nd)
		if nodeFlags != nil {
			flags[i] = nodeFlags(c, i, p[3:])
		}
	}
	t.Cleanup(c.closeConns)

	c.start(0, append(flags[0], "--bootstrap")...)
	c.token = strings.TrimSpace(readFile(t, filepath.Join(c.nodes[0].store, "bootstrap-operator.token")))
	// Joiners start together, as an operator's deployment would start them.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 1; i < n; i++ {
		wg.Go(func() { errs[i] = c.tryStart(i, append(flags[i], "--join", c.nodes[0].admin)...) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	c.waitVoters(c.ids()...)
	return c
}

// cli runs `nodalmerge args...` and fails the test if it fails.
func (c *cluster) cli(args ...string) {
	c.t.Helper()
	if r := runShell(c.t, c.dir, shellJoin(append([]string{bins.nodalmerge}, args...))); r.code != 0 {
		c.t.Fatalf("nodalmerge %v: exit %d\n%s", args, r.code, r.out)
	}
}

// freeLoopbackPorts picks n distinct free loopback ports below the
// kernel's ephemeral range (32768-60999 here). Nodes are killed and
// restarted on their ports, so a port is free again for a while mid-test;
// a kernel-picked (":0") port could be handed to another test's listener
// or outgoing connection in that window, a port below the range never is.
// Each pick is checked by binding it, and the sequence starts at a random
// offset so that parallel test processes rarely meet.
func freeLoopbackPorts(t *testing.T, n int) []string {
	t.Helper()
	const lo, hi = 20000, 32000
	out := make([]string, 0, n)
	start := lo + mathrand.IntN(hi-lo)
	for i := 0; len(out) < n && i < hi-lo; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", lo+(start-lo+i)%(hi-lo))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		l.Close()
		out = append(out, addr)
	}
	if len(out) < n {
		t.Fatalf("found only %d free loopback ports in %d-%d", len(out), lo, hi)
	}
	return out
}

func (c *cluster) ids() []string {
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = nd.id
	}
	return out
}

// start runs node i with its fixed flags plus extra (--bootstrap, --join).
func (c *cluster) start(i int, extra ...string) {
	c.t.Helper()
	if err := c.tryStart(i, extra...); err != nil {
		c.t.Fatal(err)
	}
}

// tryStart is start for use off the test goroutine: startServer's Fatal
// must run on it, so this waits for the banner itself.
func (c *cluster) tryStart(i int, extra ...string) error {
	nd := c.nodes[i]
	args := append([]string{
		"--store", nd.store, "--node-id", nd.id,
		"--listen", nd.public, "--admin-listen", nd.admin, "--raft-listen", nd.raft,
		"--tls-ca", filepath.Join(nd.certs, "ca.pem"), "--tls-cert", filepath.Join(nd.certs, "node.pem"), "--tls-key", filepath.Join(nd.certs, "node-key.pem"),
	}, extra...)
	srv, err := launchServe(nd.work, args...)
	// Registered even on failure: the process may be running. Kill, not
	// SIGTERM: these tests judge failover, and a graceful stop of a whole
	// cluster one node at a time waits on quorum it is dismantling.
	c.t.Cleanup(func() { srv.killHard() })
	if err != nil {
		return fmt.Errorf("node %s: %w", nd.id, err)
	}
	nd.mu.Lock()
	nd.srv = srv
	nd.mu.Unlock()
	return nil
}

// kill sends SIGKILL to node i and waits for the process to be gone.
func (c *cluster) kill(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	nd.mu.Lock()
	srv := nd.srv
	nd.srv = nil
	nd.mu.Unlock()
	if srv == nil {
		c.t.Fatalf("node %s is not running", nd.id)
	}
	srv.killHard()
}

// up reports whether node i's process is running.
func (c *cluster) up(i int) bool {
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.srv != nil
}

// stderr is node i's log so far (empty while down).
func (c *cluster) stderr(i int) string {
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.srv == nil {
		return ""
	}
	return nd.srv.stderr.String()
}

// conn is a client connection to node i's admin port, kept across the
// node's restarts (gRPC reconnects by itself).
func (c *cluster) conn(i int) *grpc.ClientConn {
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.conn == nil {
		cc, err := grpc.NewClient(nd.admin,
			grpc.WithTransportCredentials(credentials.NewTLS(c.ops.ClientConfig(""))),
			grpc.WithPerRPCCredentials(bearerToken(c.token)),
			// Nodes come back within seconds in these tests; gRPC's default
			// reconnect backoff (up to two minutes) would hide that.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: 2 * time.Second,
			}))
		if err != nil {
			c.t.Fatalf("dial %s: %v", nd.admin, err)
		}
		nd.conn = cc
	}
	return nd.conn
}

func (c *cluster) closeConns() {
	for _, nd := range c.nodes {
		nd.mu.Lock()
		if nd.conn != nil {
			nd.conn.Close()
			nd.conn = nil
		}
		nd.mu.Unlock()
	}
}

func (c *cluster) clusterClient(i int) adminv1.ClusterServiceClient {
	return adminv1.NewClusterServiceClient(c.conn(i))
}

func (c *cluster) policyClient(i int) adminv1.PolicyServiceClient {
	return adminv1.NewPolicyServiceClient(c.conn(i))
}

// index returns the position of the node with this id.
func (c *cluster) index(id string) int {
	c.t.Helper()
	i := slices.IndexFunc(c.nodes, func(nd *clusterNode) bool { return nd.id == id })
	if i < 0 {
		c.t.Fatalf("no node %q", id)
	}
	return i
}

// leader waits until a running node names a leader that is running too,
// and returns its position.
func (c *cluster) leader() int {
	c.t.Helper()
	var last string
	i := -1
	c.eventually("a running leader", func() bool {
		for j := range c.nodes {
			if !c.up(j) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
			st, err := c.clusterClient(j).GetStatus(ctx, &adminv1.GetStatusRequest{})
			cancel()
			if err != nil {
				last = fmt.Sprintf("%s: %v", c.nodes[j].id, err)
				continue
			}
			if st.GetLeaderId() == "" {
				last = fmt.Sprintf("%s: no leader", c.nodes[j].id)
				continue
			}
			if k := slices.IndexFunc(c.nodes, func(nd *clusterNode) bool { return nd.id == st.GetLeaderId() }); k >= 0 && c.up(k) {
				i = k
				return true
			}
			last = fmt.Sprintf("%s: leader %s is down", c.nodes[j].id, st.GetLeaderId())
		}
		return false
	}, func() string { return last })
	return i
}

// waitVoters waits until every running node's own member list (a stale,
// node-local read) shows exactly these voters.
func (c *cluster) waitVoters(ids ...string) {
	c.t.Helper()
	want := slices.Sorted(slices.Values(ids))
	var last string
	c.eventually(fmt.Sprintf("voters %v on every running node", want), func() bool {
		for i := range c.nodes {
			if !c.up(i) {
				continue
			}
			ctx, cancel := context.WithTimeout(staleRead(context.Background()), rpcTimeout)
			resp, err := c.clusterClient(i).ListMembers(ctx, &adminv1.ListMembersRequest{})
			cancel()
			if err != nil {
				last = fmt.Sprintf("%s: %v", c.nodes[i].id, err)
				return false
			}
			var got []string
			for _, m := range resp.GetMembers() {
				if m.GetVoter() {
					got = append(got, m.GetNodeId())
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				last = fmt.Sprintf("%s sees voters %v", c.nodes[i].id, got)
				return false
			}
		}
		return true
	}, func() string { return last })
}

// eventually polls cond until it holds or clusterWait passes. Polling is
// the only signal here: the state lives in other processes.
func (c *cluster) eventually(what string, cond func() bool, detail func() string) {
	c.t.Helper()
	deadline := time.Now().Add(clusterWait)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("no %s within %s; last: %s", what, clusterWait, detail())
		}
		time.Sleep(pollEvery)
	}
}

// stale asks for this node's applied state instead of a linearizable read.
func staleRead(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "nodalmerge-consistency", "stale")
}

// bearerToken sends the operator token on every call.
type bearerToken string

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }

// retryableErr reports errors a client may retry on another node: the
// cluster is electing, the node is down or leadership moved.
func retryableErr(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// launchServe starts `nodalmerge serve args...` in dir and waits for its
// banner, like startServer, but reports failure as an error so that nodes
// can be started concurrently.
func launchServe(dir string, args ...string) (*server, error) {
	s, lines, err := spawnServe(dir, args...)
	if err != nil {
		return s, err
	}
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	for s.grpcurl == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				<-s.done
				return s, fmt.Errorf("exited before its banner (%v); stderr:\n%s", s.waitErr, s.stderr.String())
			}
			s.banner = append(s.banner, line)
			if m := adminLine.FindStringSubmatch(line); m != nil {
				s.admin = m[1]
			}
			if m := grpcurlLine.FindStringSubmatch(line); m != nil {
				s.grpcurl = m[1]
			}
		case <-timer.C:
			return s, fmt.Errorf("no banner within %s; stderr:\n%s", startTimeout, s.stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return s, nil
}

// killHard kills the process (kill -9) and waits until it is gone.
func (s *server) killHard() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return
	}
	<-s.done
}
