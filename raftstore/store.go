package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Store is one node's Raft member and its replica of the cluster state.
// All methods are safe for concurrent use.
type Store struct {
	cfg    Config
	logger *slog.Logger

	fsm      *fsm
	raft     *raft.Raft
	logs     raft.LogStore // what Raft reads entries from (WaitApplied looks at entry types)
	trans    *raft.NetworkTransport
	stream   *tlsStreamLayer
	disk     *diskStores // nil in memory
	events   *dispatcher // nil without OnApply/OnRestore
	hadState bool

	// readyTerm is the last term in which this node, as leader, committed
	// an entry of its own (see ReadIndex).
	readyTerm atomic.Uint64

	leaderDone chan struct{} // closed when the leader watcher exits; nil without OnLeaderChange

	closed    chan struct{} // closed by Close; wakes waiters
	closeOnce sync.Once
	closeErr  error
}

// boltOpenTimeout bounds waiting for bolt's file lock: a second process on
// the same --store fails fast with a clear error instead of hanging.
const boltOpenTimeout = 2 * time.Second

// Open validates cfg, opens the log, stable and snapshot stores, starts the
// mTLS transport and starts Raft. It does not bootstrap: the caller decides
// between BootstrapSingle (new cluster), joining, or resuming (HadState).
func Open(cfg Config) (_ *Store, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The caller's logger already carries the node's identity; add only
	// where the record comes from.
	logger = logger.With("component", "raftstore")
	s := &Store{cfg: cfg, logger: logger, closed: make(chan struct{})}
	hl := newHCLogAdapter(logger, "raft")

	// cleanup undoes what was opened so far when a later step fails.
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	s.events = newDispatcher(logger, cfg.OnApply, cfg.OnRestore)
	cleanup = append(cleanup, s.events.close)
	s.fsm = newFSM(logger, s.events)

	var (
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if cfg.Dir == "" {
		mem := raft.NewInmemStore()
		s.logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		raftDir := filepath.Join(cfg.Dir, "raft")
		if err := os.MkdirAll(raftDir, 0o700); err != nil {
			return nil, fmt.Errorf("raftstore: create %s: %w", raftDir, err)
		}
		disk, err := openDiskStores(cfg.logStore, raftDir, hl)
		if err != nil {
			return nil, err
		}
		s.disk = disk
		cleanup = append(cleanup, func() { _ = disk.close() })
		fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, snapshotsRetained, hl.Named("snapshot"))
		if err != nil {
			return nil, fmt.Errorf("raftstore: open snapshot store %s: %w", raftDir, err)
		}
		s.logs, stable, snaps = disk.logs, disk.stable, fileSnaps
	}
	s.fsm.snapshotIndex = latestSnapshotIndex(snaps)

	s.hadState, err = raft.HasExistingState(s.logs, stable, snaps)
	if err != nil {
		return nil, fmt.Errorf("raftstore: check existing state: %w", err)
	}

	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("raftstore: listen on %s: %w", cfg.Bind, err)
	}
	cleanup = append(cleanup, func() { _ = ln.Close() })
	adv, err := advertised(cfg.Advertise, ln.Addr())
	if err != nil {
		return nil, err
	}
	s.stream = newTLSStreamLayer(ln, adv, cfg.ServerTLS, cfg.ClientTLS)
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  s.stream,
		MaxPool: transportMaxPool,
		Timeout: transportTimeout,
		Logger:  hl.Named("net"),
	})
	cleanup = append(cleanup, func() { _ = s.trans.Close() })

	s.raft, err = raft.NewRaft(cfg.raftConfig(hl), s.fsm, s.logs, stable, snaps, s.trans)
	if err != nil {
		return nil, fmt.Errorf("raftstore: start raft: %w", err)
	}
	if cfg.OnLeaderChange != nil {
		s.leaderDone = make(chan struct{})
		go s.watchLeader(cfg.OnLeaderChange)
	}
	storage, logStore := cfg.Dir, cfg.logStore.String()
	if storage == "" {
		storage, logStore = "memory", "memory"
	}
	logger.Info("raft started", "raft_addr", adv.String(), "storage", storage, "log_store", logStore, "had_state", s.hadState)
	return s, nil
}

// advertised picks the address peers dial: the configured one, or the
// listener's real address (with the real port when Bind used :0).
func advertised(configured string, listen net.Addr) (net.Addr, error) {
	if configured != "" {
		return advertiseAddr(configured), nil
	}
	tcp, ok := listen.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("raftstore: listener address %s is not TCP", listen)
	}
	if tcp.IP.IsUnspecified() {
		return nil, fmt.Errorf("raftstore: config: Bind %s is a wildcard address; set Advertise to an address peers can reach", listen)
	}
	return advertiseAddr(tcp.String()), nil
}

// NodeID is this node's Raft server id.
func (s *Store) NodeID() string { return s.cfg.NodeID }

// RaftAddr is the advertised Raft address (with the real port when Bind
// used port 0).
func (s *Store) RaftAddr() string { return string(s.trans.LocalAddr()) }

// HadState reports whether Raft state (log, term or snapshot) existed when
// the store was opened. A node with state resumes its membership and must
// never bootstrap or join again.
func (s *Store) HadState() bool { return s.hadState }

// BootstrapSingle forms a new cluster with this node as the only voter.
// It fails if the store already has Raft state.
func (s *Store) BootstrapSingle() error {
	cfg := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter,
		ID:       raft.ServerID(s.cfg.NodeID),
		Address:  s.trans.LocalAddr(),
	}}}
	if err := s.raft.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("raftstore: bootstrap single-node cluster: %w", err)
	}
	s.logger.Info("bootstrapped single-node cluster", "raft_addr", s.RaftAddr())
	return nil
}

// Close shuts Raft down (which closes the transport), closes every Raft
// connection, stops the observers' goroutines (events not yet delivered
// are dropped; a callback in progress is waited for) and then closes the
// stores. It is idempotent; later calls return the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		var errs []error
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raftstore: shutdown raft: %w", err))
		}
		// Raft closed the transport and with it the stream layer; closing
		// again is a no-op that makes the ordering explicit.
		if err := s.stream.Close(); err != nil {
			errs = append(errs, err)
		}
		if s.leaderDone != nil {
			<-s.leaderDone
		}
		s.events.close()
		if s.disk != nil {
			if err := s.disk.close(); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
		s.logger.Info("raft stopped")
	})
	return s.closeErr
}
