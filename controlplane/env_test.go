package controlplane

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/nodalmerge/nodalmerge-go/dataplane"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/internal/syncbuf"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
	"github.com/nodalmerge/nodalmerge-go/token"
)

const testClusterID = "cluster-test-1"

// fakeCluster is a leader's view of the cluster with a real keyring and a
// minimal state model: it records every proposed command and applies the
// few the service tests read back. The replicated semantics are
// raftstore's and are exercised against the real store in
// cluster_test.go.
type fakeCluster struct {
	mu       sync.Mutex
	id       string
	status   raftstore.Status
	keys     []*statev1.Key
	members  []*statev1.Member
	rooms    map[string]*statev1.Room
	ticks    []*statev1.TickSchedule
	applied  []*statev1.Command
	index    uint64
	applyErr error            // answered by Apply when set
	reads    int              // ReadIndex calls
	follower bool             // IsLeader answers false; LeaderAdmin names status.LeaderID
	revoked  map[string]int64 // token id → until (unix ms, 0 = forever), from Revoke commands
}

func (c *fakeCluster) ClusterID() string { return c.id }
func (c *fakeCluster) Status() raftstore.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}
func (c *fakeCluster) Keys() []*statev1.Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cloneAll(c.keys)
}
func (c *fakeCluster) Members() []*statev1.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cloneAll(c.members)
}
func (c *fakeCluster) Member(id string) (*statev1.Member, bool) {
	for _, m := range c.Members() {
		if m.GetNodeId() == id {
			return m, true
		}
	}
	return nil, false
}
func (c *fakeCluster) Rooms() []*statev1.Room {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*statev1.Room
	for _, name := range slices.Sorted(maps.Keys(c.rooms)) {
		out = append(out, proto.Clone(c.rooms[name]).(*statev1.Room))
	}
	return out
}
func (c *fakeCluster) Room(name string) (*statev1.Room, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.rooms[name]
	if !ok {
		return nil, false
	}
	return proto.Clone(r).(*statev1.Room), true
}
func (c *fakeCluster) Revocations() []*statev1.Revocation { return nil }
func (c *fakeCluster) VerifyingKey(purpose statev1.KeyPurpose, kid string, now time.Time) (ed25519.PublicKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return keyring.VerifyKey(c.keys, purpose, kid, now)
}
func (c *fakeCluster) IsRevoked(tokenID, _ string, _ []byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.revoked[tokenID]
	return tokenID != "" && ok && (until == 0 || now.UnixMilli() < until)
}
func (c *fakeCluster) LastPolicyEntry(room string) (*statev1.PolicyEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.rooms[room].GetPolicy()
	if len(p) == 0 {
		return nil, false
	}
	return proto.Clone(p[len(p)-1]).(*statev1.PolicyEntry), true
}
func (c *fakeCluster) PolicyEntryAtIndex(room string, index uint64) (*statev1.PolicyEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.rooms[room].GetPolicy() {
		if e.GetRaftIndex() == index {
			return proto.Clone(e).(*statev1.PolicyEntry), true
		}
	}
	return nil, false
}
func (c *fakeCluster) ViewRoom(room string, fn func(*statev1.Room)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.rooms[room]
	if ok {
		fn(r)
	}
	return ok
}

// setKeyState changes the stored state of the key kid, as a replicated
// retirement or rotation would.
func (c *fakeCluster) setKeyState(kid string, st statev1.KeyState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.keys {
		if k.GetKid() == kid {
			k.State = st
		}
	}
}
func (c *fakeCluster) Ticks() []*statev1.TickSchedule {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cloneAll(c.ticks)
}

// Apply records cmd and applies what the tests read back.
func (c *fakeCluster) Apply(_ context.Context, cmd *statev1.Command) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applyErr != nil {
		return 0, c.applyErr
	}
	c.index++
	c.applied = append(c.applied, proto.Clone(cmd).(*statev1.Command))
	switch k := cmd.GetKind().(type) {
	case *statev1.Command_SetPolicy:
		r := c.room(k.SetPolicy.GetRoom())
		e := proto.Clone(k.SetPolicy.GetEntry()).(*statev1.PolicyEntry)
		e.SetUnixMs = cmd.GetProposedUnixMs()
		e.RaftIndex = c.index
		r.Policy = append(r.Policy, e)
	case *statev1.Command_Revoke:
		if rev := k.Revoke.GetRevocation(); rev.GetTokenId() != "" {
			if c.revoked == nil {
				c.revoked = map[string]int64{}
			}
			c.revoked[rev.GetTokenId()] = rev.GetUntilUnixMs()
		}
	case *statev1.Command_SetRoomLock:
		c.room(k.SetRoomLock.GetRoom()).Lock = k.SetRoomLock.GetMode()
	case *statev1.Command_PutRoomKey:
		r := c.room(k.PutRoomKey.GetRoom())
		r.Keys = append(r.Keys, k.PutRoomKey.GetKey())
	case *statev1.Command_PutTick:
		c.ticks = append(c.ticks, k.PutTick.GetTick())
	case *statev1.Command_PutMember:
		c.members = append(c.members, k.PutMember.GetMember())
	case *statev1.Command_PutQuery:
		// Replace by name or insert in name order, stamped as the state
		// machine stamps it (raftstore tests the real rules).
		r := c.room(k.PutQuery.GetRoom())
		q := proto.Clone(k.PutQuery.GetQuery()).(*statev1.RegisteredQuery)
		q.CreatedUnixMs, q.RaftIndex = cmd.GetProposedUnixMs(), c.index
		i, found := slices.BinarySearchFunc(r.Queries, q.GetName(), func(e *statev1.RegisteredQuery, name string) int {
			return strings.Compare(e.GetName(), name)
		})
		if found {
			r.Queries[i] = q
		} else {
			r.Queries = slices.Insert(r.Queries, i, q)
		}
	}
	return c.index, nil
}

func (c *fakeCluster) room(name string) *statev1.Room {
	if c.rooms == nil {
		c.rooms = map[string]*statev1.Room{}
	}
	r, ok := c.rooms[name]
	if !ok {
		r = &statev1.Room{Name: name, Lock: statev1.LockMode_LOCK_MODE_OPEN}
		c.rooms[name] = r
	}
	return r
}

// takeApplied answers and forgets the commands proposed so far.
func (c *fakeCluster) takeApplied() []*statev1.Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.applied
	c.applied = nil
	return out
}

func (c *fakeCluster) ReadIndex(context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.index, nil
}
func (c *fakeCluster) WaitApplied(context.Context, uint64) error { return nil }
func (c *fakeCluster) IsLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.follower
}
func (c *fakeCluster) LeaderAdmin() (string, string, bool) {
	st := c.Status()
	return st.LeaderID, "", st.LeaderID != ""
}
func (c *fakeCluster) AddVoter(context.Context, string, string) error { return nil }
func (c *fakeCluster) RemoveServer(context.Context, string) error     { return nil }
func (c *fakeCluster) TransferLeadership(_ context.Context, id string) (string, error) {
	return id, nil
}
func (c *fakeCluster) TakeSnapshot(context.Context) (uint64, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.index, c.status.Term, nil
}

func cloneAll[T proto.Message](in []T) []T {
	out := make([]T, 0, len(in))
	for _, m := range in {
		out = append(out, proto.Clone(m).(T))
	}
	return out
}

// recorder is an Auditor that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []AuditEvent
}

func (r *recorder) Record(_ context.Context, e AuditEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) take() []AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.events)
	r.events = nil
	return out
}

type envOptions struct {
	// logAudit leaves Config.Audit nil so events go to the logger.
	logAudit bool
	// testService adds the synthetic TestService (see testservice_test.go).
	testService bool
	// clusterID overrides the cluster id; "-" means empty.
	clusterID string
	// dataPlane is the server's DataPlane; nil leaves it unset.
	dataPlane *fakeDataPlane
	// realDataPlane, when set, is the server's DataPlane instead: a real
	// data plane's rooms and ingest path.
	realDataPlane *dataplane.Server
	// clock is the server's clock; nil answers env.now.
	clock func() time.Time
	// tokenCacheSize is Config.TokenCacheSize.
	tokenCacheSize int
}

// env is one admin server on 127.0.0.1 with real mTLS and a real keyring.
type env struct {
	pki     *pkitest.PKI
	cluster *fakeCluster
	srv     *Server
	addr    string
	audit   *recorder
	logs    *syncbuf.Buffer
	metrics *prometheus.Registry
	now     time.Time
	kid     string
	priv    ed25519.PrivateKey
	svc     *testService
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	e := &env{
		pki:     pkitest.New(t),
		audit:   &recorder{},
		logs:    &syncbuf.Buffer{},
		metrics: prometheus.NewRegistry(),
		now:     time.Now().Truncate(time.Second),
	}
	key, err := keyring.Generate(statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, e.now.Add(-time.Hour))
	if err != nil {
		t.Fatalf("generate operator key: %v", err)
	}
	roomKey, err := keyring.Generate(statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN, e.now.Add(-time.Hour))
	if err != nil {
		t.Fatalf("generate room-token key: %v", err)
	}
	e.cluster = &fakeCluster{
		id: testClusterID,
		status: raftstore.Status{
			NodeID: "n1", LeaderID: "n1", LeaderAddr: "127.0.0.1:7880", State: "leader",
			Term: 3, AppliedIndex: 17, CommitIndex: 18,
			Members: []raftstore.MemberStatus{
				{NodeID: "n1", RaftAddr: "127.0.0.1:7880", AdminAddr: "127.0.0.1:7879", PublicAddr: "127.0.0.1:7878", Voter: true, State: "leader"},
				{NodeID: "n2", RaftAddr: "127.0.0.2:7880", AdminAddr: "127.0.0.2:7879", PublicAddr: "127.0.0.2:7878", Voter: false, State: "follower"},
			},
		},
		keys: []*statev1.Key{key, roomKey},
	}
	switch opts.clusterID {
	case "":
	case "-":
		e.cluster.id = ""
	default:
		e.cluster.id = opts.clusterID
	}
	e.kid, e.priv, err = keyring.Signer(e.cluster.keys, statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, e.now)
	if err != nil {
		t.Fatalf("operator signer: %v", err)
	}

	cfg := Config{
		NodeID:  "n1",
		TLS:     e.pki.Node(t, "n1").ServerConfig(),
		Cluster: e.cluster,
		Logger:  slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Audit:   e.audit,
		Metrics: e.metrics,
		Now:     func() time.Time { return e.now },

		TokenCacheSize: opts.tokenCacheSize,
	}
	if opts.clock != nil {
		cfg.Now = opts.clock
	}
	if opts.logAudit {
		cfg.Audit = nil
	}
	if opts.dataPlane != nil {
		cfg.DataPlane = opts.dataPlane
	}
	if opts.realDataPlane != nil {
		cfg.DataPlane = opts.realDataPlane
	}
	if opts.testService {
		e.srv, e.svc = newServerWithTestService(t, cfg)
	} else {
		e.srv, err = NewServer(cfg)
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
	}
	e.serve(t)
	return e
}

// serve runs the server on a fresh 127.0.0.1 listener until the test ends.
func (e *env) serve(t testing.TB) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	e.addr = lis.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Stop(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// dial connects with the given client material (nil: no certificate).
func (e *env) dial(t testing.TB, m *pki.Material) *grpc.ClientConn {
	t.Helper()
	var creds credentials.TransportCredentials
	if m != nil {
		creds = credentials.NewTLS(m.ClientConfig(""))
	} else {
		// A client that trusts the server's CA but presents no
		// certificate: the operator config with its certificate removed.
		cfg := e.pki.Operator(t, "certless").ClientConfig("")
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &tls.Certificate{}, nil
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// operatorClaims are claims for sub "alice" valid for the next hour.
func (e *env) operatorClaims(caps ...string) token.OperatorClaims {
	return token.OperatorClaims{
		ClusterID: e.cluster.id,
		Subject:   "alice",
		Caps:      caps,
		IssuedAt:  e.now.Add(-time.Minute),
		ExpiresAt: e.now.Add(time.Hour),
		ID:        "tok-1",
	}
}

// mint signs claims with the cluster's active operator key.
func (e *env) mint(t testing.TB, c token.OperatorClaims) string {
	t.Helper()
	raw, err := token.MintOperator(e.kid, e.priv, c)
	if err != nil {
		t.Fatalf("MintOperator: %v", err)
	}
	return raw
}

// bearer attaches raw as the call's bearer token.
func bearer(ctx context.Context, raw string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+raw)
}

// callCtx is a bounded context for one RPC.
func callCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fakeDataPlane is a fixed local room store. Its room histories are real
// in-memory stores fed through the real validator (no write policy, no
// relay); tests that need the data plane's own ingest path use a real
// dataplane.Server instead (history_test.go).
type fakeDataPlane struct {
	mu         sync.Mutex
	live       map[string]int
	maxLamport map[string]uint64
	nodes      map[string]int
	compacted  []string
	histories  map[string]*history.MemStore
}

func (d *fakeDataPlane) OpenRoom(room string) (history.Store, func(), error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.histories == nil {
		d.histories = map[string]*history.MemStore{}
	}
	st, ok := d.histories[room]
	if !ok {
		st = history.NewMemStore()
		d.histories[room] = st
	}
	return st, func() {}, nil
}

// Publish validates and stores as the data plane does, and refuses like
// it: an error wrapping nothing that names the first refused node.
func (d *fakeDataPlane) Publish(ctx context.Context, room string, nodes []*syncv1.Node) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("fake publish: %w", err)
	}
	st, _, _ := d.OpenRoom(room)
	d.mu.Lock()
	defer d.mu.Unlock()
	res := (&history.Validator{}).Validate(st, nodes)
	if err := st.Put(res.Accepted); err != nil {
		return 0, fmt.Errorf("fake publish: store: %w", err)
	}
	accepted, rejected := res.Counts()
	if _, v, ok := firstProblem(res); ok {
		return accepted, fmt.Errorf("dataplane: publish to %s: %d of %d nodes rejected (first %s: %s)", room, rejected, len(nodes), v.ID, v.Reason)
	}
	return accepted, nil
}

func (d *fakeDataPlane) LiveRooms() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.live)
}

func (d *fakeDataPlane) RoomInfo(room string) (uint64, int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, live := d.live[room]
	return d.maxLamport[room], d.nodes[room], live
}

func (d *fakeDataPlane) CompactRoom(_ context.Context, room string) (uint64, uint64, uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.compacted = append(d.compacted, room)
	return uint64(d.nodes[room]), 1000, 600, nil
}

// set makes room live with peers, holding nodes up to maxLamport.
func (d *fakeDataPlane) set(room string, peers int, maxLamport uint64, nodes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live == nil {
		d.live, d.maxLamport, d.nodes = map[string]int{}, map[string]uint64{}, map[string]int{}
	}
	d.live[room], d.maxLamport[room], d.nodes[room] = peers, maxLamport, nodes
}

func (d *fakeDataPlane) compactedRooms() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.compacted)
}
