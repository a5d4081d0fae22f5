package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// Transport limits of the admin port. Admin requests are small; 4 MiB
// leaves room for archive chunks while bounding what one message can cost.
const (
	maxRecvMsgBytes = 4 << 20
	// handshakeTimeout bounds the TLS handshake so half-open connections
	// cannot pile up on the admin port.
	handshakeTimeout = 10 * time.Second
	// Clients may ping at most every 10 s; faster pingers are disconnected
	// (GOAWAY too_many_pings) instead of costing the node work.
	keepaliveMinPingInterval = 10 * time.Second
	keepalivePingAfterIdle   = time.Minute
	keepalivePingTimeout     = 20 * time.Second
)

// Config configures a Server.
type Config struct {
	// NodeID is this node's id, reported by GetStatus and audit events.
	NodeID string
	// TLS is the server config; it must require and verify client
	// certificates (pki ServerConfig does).
	TLS *tls.Config
	// Cluster is the node's view of the replicated state.
	Cluster Cluster
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Audit receives one event per command call; nil writes them to
	// Logger at INFO with msg "audit".
	Audit Auditor
	// Metrics registers the control-plane counters; nil disables them.
	// It is never the global default registry unless the caller passes it.
	Metrics prometheus.Registerer
	// Now is the clock for token expiry and audit times; nil is time.Now.
	Now func() time.Time
	// ClientTLS dials other nodes' admin ports with this node's
	// certificate, to forward calls to the leader (pki ClientConfig).
	// Nil: this node never forwards; calls that need the leader answer
	// UNAVAILABLE on a follower.
	ClientTLS *tls.Config
	// DataPlane answers what only the local room store knows; nil: no
	// room is live here and compact-room is refused.
	DataPlane DataPlane
	// AuditCapacity is how many recent audit events the node keeps in
	// memory for audit.list; 0 means 10,000.
	AuditCapacity int
	// TokenCacheSize bounds the cache of verified operator tokens (see
	// tokencache.go); 0 means 4096, negative disables the cache.
	TokenCacheSize int
}

// Server is the admin gRPC server of one node.
type Server struct {
	nodeID   string
	cluster  Cluster
	logger   *slog.Logger
	audit    Auditor
	metrics  *metrics
	now      func() time.Time
	registry *Registry
	grpc     *grpc.Server
	health   *health.Server

	dataPlane DataPlane
	events    *auditLog
	forwarder *forwarder
	// tokens caches verified operator tokens; nil when disabled.
	tokens *tokenCache
	// handlers maps a full method to its registered implementation, so
	// the WebSocket door runs exactly the gRPC handler.
	handlers map[string]methodHandler
	// overlays add this node's local facts to an answer the leader gave
	// (list-rooms, describe-room, projection.list), by command name.
	overlays map[string]func(proto.Message) error
}

// methodHandler is one unary method of a registered service.
type methodHandler struct {
	desc grpc.MethodDesc
	impl any
}

// NewServer builds the registry from the proto options, wires the
// interceptors and registers every admin service, health and reflection. It refuses configurations that would serve without client
// certificates.
func NewServer(cfg Config) (*Server, error) {
	registry, err := NewRegistry()
	if err != nil {
		return nil, err
	}
	s, err := newServer(cfg, registry)
	if err != nil {
		return nil, err
	}
	rooms := &roomService{s: s}
	queries := &queryService{s: s}
	services := []struct {
		desc *grpc.ServiceDesc
		impl any
	}{
		{&adminv1.ClusterService_ServiceDesc, &clusterService{s: s}},
		{&adminv1.TokenService_ServiceDesc, &tokenService{s: s, cluster: cfg.Cluster, logger: s.logger, now: s.now}},
		{&adminv1.KeyService_ServiceDesc, &keyService{s: s}},
		{&adminv1.RoomService_ServiceDesc, rooms},
		{&adminv1.PolicyService_ServiceDesc, &policyService{s: s}},
		{&adminv1.TickService_ServiceDesc, &tickService{s: s}},
		{&adminv1.TopologyService_ServiceDesc, &topologyService{s: s}},
		{&adminv1.ArchiveService_ServiceDesc, &archiveService{s: s}},
		{&adminv1.QueryService_ServiceDesc, queries},
		{&adminv1.AuditService_ServiceDesc, &auditService{s: s}},
	}
	s.overlays[listRoomsCommand] = rooms.overlayList
	s.overlays[describeRoomCommand] = rooms.overlayDescribe
	s.overlays[listProjectionsCommand] = queries.overlayList
	for _, svc := range services {
		if err := s.registerService(svc.desc, svc.impl); err != nil {
			s.metrics.unregister(cfg.Metrics)
			return nil, err
		}
	}
	s.markServing()
	return s, nil
}

// newServer builds a server around a registry without any admin service,
// so tests can add services of their own before marking health.
func newServer(cfg Config, registry *Registry) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		nodeID:   cfg.NodeID,
		cluster:  cfg.Cluster,
		logger:   cfg.Logger,
		audit:    cfg.Audit,
		now:      cfg.Now,
		registry: registry,
		health:   health.NewServer(),

		dataPlane: cfg.DataPlane,
		events:    newAuditLog(cfg.AuditCapacity),
		handlers:  make(map[string]methodHandler),
		overlays:  make(map[string]func(proto.Message) error),
	}
	if cfg.ClientTLS != nil {
		s.forwarder = newForwarder(cfg.ClientTLS)
	}
	switch {
	case cfg.TokenCacheSize == 0:
		s.tokens = newTokenCache(defaultTokenCacheSize)
	case cfg.TokenCacheSize > 0:
		s.tokens = newTokenCache(cfg.TokenCacheSize)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.audit == nil {
		s.audit = logAuditor{logger: s.logger}
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Metrics, registry.All(), knownAuthFailureReasons()); err != nil {
		return nil, err
	}

	s.grpc = grpc.NewServer(append(s.interceptors(),
		grpc.Creds(credentials.NewTLS(cfg.TLS)),
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.MaxRecvMsgSize(maxRecvMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             keepaliveMinPingInterval,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    keepalivePingAfterIdle,
			Timeout: keepalivePingTimeout,
		}),
	)...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// registerService registers an admin service after checking, at start,
// what the interceptors would otherwise only find per call: every method
// must be a registered command, and the implementation must not bypass
// authentication through go-grpc-middleware's AuthFuncOverride hook.
func (s *Server) registerService(desc *grpc.ServiceDesc, impl any) error {
	if _, ok := impl.(auth.ServiceAuthFuncOverride); ok {
		return fmt.Errorf("controlplane: service %s overrides authentication; refusing to register it", desc.ServiceName)
	}
	var missing []string
	for _, m := range desc.Methods {
		if _, ok := s.registry.Lookup("/" + desc.ServiceName + "/" + m.MethodName); !ok {
			missing = append(missing, m.MethodName)
		}
	}
	for _, m := range desc.Streams {
		if _, ok := s.registry.Lookup("/" + desc.ServiceName + "/" + m.StreamName); !ok {
			missing = append(missing, m.StreamName)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("controlplane: service %s has methods without a command: %s", desc.ServiceName, strings.Join(missing, ", "))
	}
	s.grpc.RegisterService(desc, impl)
	for _, m := range desc.Methods {
		s.handlers["/"+desc.ServiceName+"/"+m.MethodName] = methodHandler{desc: m, impl: impl}
	}
	return nil
}

// markServing sets overall and per-service health to SERVING for every
// service registered so far.
func (s *Server) markServing() {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
}

func (cfg Config) validate() error {
	var errs []error
	if cfg.NodeID == "" {
		errs = append(errs, errors.New("NodeID is empty"))
	}
	if cfg.Cluster == nil {
		errs = append(errs, errors.New("Cluster is nil"))
	}
	switch {
	case cfg.TLS == nil:
		errs = append(errs, errors.New("TLS is nil: the admin port is mTLS only"))
	case cfg.TLS.ClientAuth != tls.RequireAndVerifyClientCert:
		errs = append(errs, fmt.Errorf("TLS.ClientAuth is %v: the admin port requires verified client certificates", cfg.TLS.ClientAuth))
	}
	if cfg.AuditCapacity < 0 {
		errs = append(errs, fmt.Errorf("AuditCapacity is %d: use 0 for the default or a positive size", cfg.AuditCapacity))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("controlplane: invalid config: %w", err)
	}
	return nil
}

// interceptors chains recovery, logging, then the command record,
// authentication, authorization and (unary only) routing to the leader.
// The command layers are skipped, by selector, for health and reflection,
// which need only the client certificate the TLS layer already demanded.
// Streams are served where they arrive: no admin RPC streams yet.
func (s *Server) interceptors() []grpc.ServerOption {
	recoveryOpt := recovery.WithRecoveryHandlerContext(recoverPanic(s.logger))
	isCommand := commandSelector{}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(
			recovery.UnaryServerInterceptor(recoveryOpt),
			s.logUnary,
			selector.UnaryServerInterceptor(s.commandUnary, isCommand),
			selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(s.authenticate), isCommand),
			selector.UnaryServerInterceptor(s.authorizeUnary, isCommand),
			selector.UnaryServerInterceptor(s.routeUnary, isCommand),
		),
		grpc.ChainStreamInterceptor(
			recovery.StreamServerInterceptor(recoveryOpt),
			s.logStream,
			selector.StreamServerInterceptor(s.commandStream, isCommand),
			selector.StreamServerInterceptor(auth.StreamServerInterceptor(s.authenticate), isCommand),
			selector.StreamServerInterceptor(s.authorizeStream, isCommand),
		),
	}
}

// commandSelector selects every method except health and reflection. It is an
// exclusion list on purpose: a new service is a command (and must be in the
// registry) unless it is deliberately listed here.
type commandSelector struct{}

func (commandSelector) Match(_ context.Context, cm interceptors.CallMeta) bool {
	return !isInfrastructureService(cm.Service)
}

func isInfrastructureService(service string) bool {
	return service == healthpb.Health_ServiceDesc.ServiceName || strings.HasPrefix(service, "grpc.reflection.")
}

// Registry answers the command registry the server authorizes with.
func (s *Server) Registry() *Registry { return s.registry }

// Serve accepts connections on lis until Stop. It answers nil after Stop,
// also when Stop won the race with Serve's start (grpc closes lis then),
// so an orderly shutdown never looks like a failure.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.grpc.Serve(lis); err != nil {
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return fmt.Errorf("controlplane: serve %s: %w", lis.Addr(), err)
	}
	return nil
}

// Stop marks every service NOT_SERVING, then stops gracefully, letting
// in-flight calls finish; at ctx's deadline it closes every connection.
func (s *Server) Stop(ctx context.Context) {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
	// In-flight calls are over, so no forward can be using a connection.
	s.forwarder.close(s.logger)
}
