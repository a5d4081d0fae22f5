package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodalmerge/nodalmerge-go/controlplane"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
	"github.com/nodalmerge/nodalmerge-go/roomstore"
	"github.com/nodalmerge/nodalmerge-go/tick"
)

// leaderTimeout bounds how long Start waits for Raft to elect a leader;
// leadershipHandOver bounds the transfer a stopping leader attempts.
const (
	leaderTimeout      = 30 * time.Second
	leadershipHandOver = 5 * time.Second
)

// Node is one running NodalMerge process.
type Node struct {
	cfg    Config
	state  *stateFolder
	nodeID string
	tls    *pki.Material
	// wsTLS is the public listener's certificate (nil: plain ws://);
	// tlsWatches notice renewed files, stopReload ends their polling
	// (tls_reload.go).
	wsTLS      *pki.KeyPair
	tlsWatches []*pki.FileWatch
	stopReload context.CancelFunc

	store   *raftstore.Store
	policy  *policyIndex
	reactor *reactor
	admin   *controlplane.Server
	rooms   *roomstore.Store // nil without --store
	// data is set once the data plane exists; the admin server, which is
	// built first, reads it through dataPlaneView.
	data  atomic.Pointer[dataplane.Server]
	ticks *tick.Runner
	// kek is the key-encryption key of --kek-file (nil: none); rotator
	// rotates keys on a schedule, stopRotate ends it (autorotate.go).
	kek        *keyring.KEK
	rotator    atomic.Pointer[autoRotator]
	stopRotate func()
	// sweeper closes sessions whose token, peer or key is revoked;
	// stopSweep ends it.
	sweeper   *sweeper
	stopSweep context.CancelFunc
	public    *http.Server
	metrics   *http.Server

	publicLis, adminLis, metricsLis net.Listener

	tokenWritten bool
	wg           sync.WaitGroup
	errc         chan error
	stopOnce     sync.Once
	stopErr      error
}

// Start brings a node up: it returns once the node serves every listener,
// or an error with everything it had started stopped again.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, errc: make(chan error, 4)}
	if err := n.start(ctx); err != nil {
		// Stop what was started, in order; the start error is the one to
		// report.
		n.Stop(context.Background())
		return nil, err
	}
	return n, nil
}

func (n *Node) start(ctx context.Context) (err error) {
	cfg := n.cfg
	if n.state, err = openStateFolder(cfg.StoreDir); err != nil {
		return err
	}
	if n.nodeID, err = n.state.nodeID(cfg.NodeID); err != nil {
		return err
	}
	// Every line this node logs names it, so the logs of a cluster can be
	// read together.
	n.cfg.Logger = cfg.Logger.With("node", n.nodeID)
	cfg, log := n.cfg, n.cfg.Logger
	if n.kek, err = loadKEKFile(cfg.KEKFile); err != nil {
		return err
	}
	if err := n.loadTLS(); err != nil {
		return err
	}
	if err := n.loadPublicTLS(); err != nil {
		return err
	}
	serverKey, err := n.state.serverKey()
	if err != nil {
		return err
	}

	// Bind every listener before starting anything, so a busy port fails the
	// start cleanly instead of leaving half a node running.
	if n.publicLis, err = listen("--listen", cfg.Listen); err != nil {
		return err
	}
	n.publicLis = n.publicListener(n.publicLis)
	if n.adminLis, err = listen("--admin-listen", cfg.AdminListen); err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		if n.metricsLis, err = listen("--metrics-addr", cfg.MetricsAddr); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	n.policy = newPolicyIndex(serverKey.Public().(ed25519.PublicKey), log.With("component", "policy"))
	n.reactor = newReactor(log.With("component", "reactor"), n.policy)
	reg.MustRegister(n.reactor.rotations)

	raftDir := ""
	if n.state.durable {
		raftDir = n.state.raftDir()
	}
	n.store, err = raftstore.Open(raftstore.Config{
		NodeID:         n.nodeID,
		Dir:            raftDir,
		Bind:           cfg.RaftListen,
		Advertise:      cfg.AdvertiseRaftListen,
		ServerTLS:      n.tls.NodeServerConfig(),
		ClientTLS:      n.tls.ClientConfig(""),
		AdminAddr:      advertised(cfg.AdvertiseAdminListen, n.adminLis),
		PublicAddr:     advertised(cfg.AdvertiseListen, n.publicLis),
		Logger:         log, // raftstore names itself as the component
		OnApply:        n.reactor.onApply,
		OnRestore:      n.reactor.onRestore,
		OnLeaderChange: n.onLeaderChange,
	})
	if err != nil {
		return fmt.Errorf("open raft store: %w", err)
	}
	if err := n.joinOrBootstrap(ctx); err != nil {
		return err
	}

	n.admin, err = controlplane.NewServer(controlplane.Config{
		NodeID:    n.nodeID,
		TLS:       n.tls.ServerConfig(),
		ClientTLS: n.tls.ClientConfig(""),
		Cluster:   n.adminCluster(),
		DataPlane: (*dataPlaneView)(n),
		Logger:    log.With("component", "controlplane"),
		Metrics:   reg,
		Now:       cfg.Now,
	})
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	if err := n.issueBootstrapToken(n.admin.Registry()); err != nil {
		return err
	}

	var rooms dataplane.RoomStore
	if n.state.durable {
		if n.rooms, err = roomstore.Open(n.state.roomsDir(), roomstore.Options{Logger: log.With("component", "roomstore")}); err != nil {
			return fmt.Errorf("open room store: %w", err)
		}
		rooms = n.rooms
	}
	data, err := dataplane.NewServer(dataplane.Config{
		ServerKey:         serverKey,
		HandshakeTimeout:  cfg.HandshakeTimeout,
		MaxFrameBytes:     cfg.MaxFrameBytes,
		BroadcastCapacity: cfg.BroadcastCapacity,
		PeerRateNodes:     cfg.PeerRateNodes,
		PeerRateBytes:     int64(cfg.PeerRateMiB) << 20,
		IdleTimeout:       cfg.IdleTimeout,
		MaxConnections:    cfg.MaxConnections,
		AllowedOrigins:    cfg.AllowedOrigins,
		TrustedProxies:    cfg.trustedProxies(),
		RoomStore:         rooms,
		Admission:         (&admission{store: n.store, now: cfg.Now, failed: n.admin.CountAuthFailure}).admit,
		WritePolicy:       n.policy,
		Commands:          wsCommands{controlplane.NewDispatcher(n.admin)},
		Metrics:           reg,
		Logger:            log.With("component", "dataplane"),
		Now:               cfg.Now,
	})
	if err != nil {
		return fmt.Errorf("data plane: %w", err)
	}
	n.data.Store(data)
	n.ticks = tick.NewRunner(tick.Config{
		ServerKey: serverKey,
		Rooms:     tickRooms{data},
		Logger:    log.With("component", "tick"),
		Now:       cfg.Now,
	})
	n.sweeper = newSweeper(n.store, data, cfg.Now, log.With("component", "revocation"))
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	n.stopSweep = stopSweep
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.sweeper.run(sweepCtx)
	}()
	n.reactor.start(n.store, data.EvictPeer, n.ticks, n.sweeper.trigger)

	n.startAutoRotate()
	n.serve("admin", func() error { return n.admin.Serve(n.adminLis) })
	n.public = &http.Server{Handler: data, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slogErrorLog(log, "public")}
	n.serve("public", func() error { return n.public.Serve(n.publicLis) })

	if n.metricsLis != nil {
		registerNodeMetrics(reg, n.store)
		n.metrics = &http.Server{Handler: n.metricsHandler(reg), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slogErrorLog(log, "metrics")}
		n.serve("metrics", func() error { return n.metrics.Serve(n.metricsLis) })
	}

	n.startTLSReload()
	log.Info("node started", "cluster_id", n.store.ClusterID(),
		"public", n.wsScheme()+"://"+n.publicLis.Addr().String(), "admin", n.adminLis.Addr().String(), "raft", n.store.RaftAddr(),
		"durable", n.state.durable, "state_dir", n.state.dir)
	if cfg.Banner != nil {
		n.writeBanner(cfg.Banner)
	}
	return nil
}

// loadTLS loads the operator-supplied internal material, or makes and loads
// the embedded default's dev material in <state>/tls.
func (n *Node) loadTLS() error {
	ca, cert, key := n.cfg.TLSCA, n.cfg.TLSCert, n.cfg.TLSKey
	if ca == "" {
		dir := n.state.tlsDir()
		if err := pki.EnsureDev(dir, n.nodeID, certHosts(n.cfg)); err != nil {
			return fmt.Errorf("dev TLS material in %s: %w", dir, err)
		}
		ca, cert, key = filepath.Join(dir, pki.CAFile), filepath.Join(dir, pki.NodeFile), filepath.Join(dir, pki.NodeKeyFile)
	}
	n.watchInternalTLS(ca, cert, key) // baseline before loading: see tls_reload.go
	m, err := pki.Load(ca, cert, key)
	if err != nil {
		return fmt.Errorf("internal TLS material: %w", err)
	}
	if id := m.Identity(); id.Role != pki.RoleNode {
		return fmt.Errorf("--tls-cert %s: holds %s, not a node certificate (make one with `nodalmerge cert create-node`)", cert, id)
	}
	n.tls = m
	return nil
}

// issueBootstrapToken writes the bootstrap operator token when this start
// formed the cluster, or when the operator asked for a fresh one.
func (n *Node) issueBootstrapToken(reg *controlplane.Registry) error {
	log := n.cfg.Logger
	if !n.tokenWritten && !n.cfg.RecoverOperatorToken {
		return nil
	}
	subject := "bootstrap-operator"
	if !n.tokenWritten {
		subject = "recovered-operator@" + n.nodeID
	}
	raw, claims, err := mintOperatorToken(n.store, n.kek, subject, tokenCapabilities(reg), n.cfg.BootstrapTokenTTL, n.cfg.Now())
	if err != nil {
		return err
	}
	if err := n.state.writePrivate(n.state.tokenPath(), []byte(raw+"\n")); err != nil {
		return fmt.Errorf("bootstrap operator token: %w", err)
	}
	n.tokenWritten = true
	msg := "bootstrap operator token written"
	if n.cfg.RecoverOperatorToken {
		msg = "audit: operator token recovered with --recover-operator-token"
	}
	log.Info(msg, "path", n.state.tokenPath(), "token_id", claims.ID, "subject", claims.Subject,
		"expires_at", claims.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}

func (n *Node) serve(name string, fn func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			n.cfg.Logger.Error("listener failed", "listener", name, "err", err)
			select {
			case n.errc <- fmt.Errorf("%s listener: %w", name, err):
			default:
			}
		}
	}()
}

// Err reports a listener that stopped serving on its own.
func (n *Node) Err() <-chan error { return n.errc }

// Stop shuts the node down in order: stop admitting WebSocket clients, close
// sessions with 1001, stop the admin server, close Raft and its stores. It
// is idempotent.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() { n.stopErr = n.stop(ctx) })
	return n.stopErr
}

func (n *Node) stop(ctx context.Context) error {
	var errs []error
	n.stopTLSReload()
	if n.public != nil {
		// Closes the listener and idle connections; upgraded WebSockets are
		// hijacked and closed by the data plane below.
		if err := n.public.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("public listener: %w", err))
		}
	} else if n.publicLis != nil {
		n.publicLis.Close()
	}
	if n.reactor != nil {
		n.reactor.stop()
	}
	n.stopAutoRotate()
	if n.stopSweep != nil {
		n.stopSweep()
	}
	if n.ticks != nil {
		n.ticks.Stop()
	}
	n.handOverLeadership(ctx)
	if data := n.data.Load(); data != nil {
		if err := data.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("data plane: %w", err))
		}
	}
	if n.admin != nil {
		n.admin.Stop(ctx)
	} else if n.adminLis != nil {
		n.adminLis.Close()
	}
	if n.metrics != nil {
		if err := n.metrics.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics listener: %w", err))
		}
	} else if n.metricsLis != nil {
		n.metricsLis.Close()
	}
	n.wg.Wait()
	if n.rooms != nil {
		// After the data plane: every acknowledged node is already on disk
		// (Put is durable when it returns); Close checkpoints the room files.
		if err := n.rooms.Close(); err != nil {
			errs = append(errs, fmt.Errorf("room store: %w", err))
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// handOverLeadership transfers leadership away before a leader of a
// multi-node cluster stops, so the others do not wait out an election
// timeout. Best effort and bounded.
func (n *Node) handOverLeadership(ctx context.Context) {
	if n.store == nil || !n.store.IsLeader() || len(n.store.Members()) < 2 {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, leadershipHandOver)
	defer cancel()
	if to, err := n.store.TransferLeadership(tctx, ""); err != nil {
		n.cfg.Logger.Warn("could not hand over leadership before stopping", "err", err)
	} else {
		n.cfg.Logger.Info("leadership handed over before stopping", "to", to)
	}
}

// NodeID is this node's stable id.
func (n *Node) NodeID() string { return n.nodeID }

// ClusterID is the id of the cluster this node belongs to.
func (n *Node) ClusterID() string { return n.store.ClusterID() }

// Store is the node's Raft store.
func (n *Node) Store() *raftstore.Store { return n.store }

// StateDir is the node's absolute state folder.
func (n *Node) StateDir() string { return n.state.dir }

// TokenPath is where the bootstrap operator token is kept.
func (n *Node) TokenPath() string { return n.state.tokenPath() }

// PublicAddr is the bound address of the WebSocket listener.
func (n *Node) PublicAddr() string { return n.publicLis.Addr().String() }

// AdminAddr is the bound address of the gRPC admin listener.
func (n *Node) AdminAddr() string { return n.adminLis.Addr().String() }

// RaftAddr is the advertised address of the Raft transport.
func (n *Node) RaftAddr() string { return n.store.RaftAddr() }

// MetricsAddr is the bound address of the metrics listener, or "".
func (n *Node) MetricsAddr() string {
	if n.metricsLis == nil {
		return ""
	}
	return n.metricsLis.Addr().String()
}

// TLS is the node's internal TLS material.
func (n *Node) TLS() *pki.Material { return n.tls }
