package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ServerConfig is for the admin gRPC listener: TLS 1.3 only, a client
// certificate signed by the cluster CA is required, and both node and
// operator identities are accepted (what a caller may do is decided later,
// from its identity and bearer token).
func (m *Material) ServerConfig() *tls.Config { return m.serverConfig(false) }

// NodeServerConfig is for the Raft listener: like ServerConfig, but the
// handshake fails unless the client's certificate marks it as a cluster
// node, so an operator certificate can never speak Raft.
func (m *Material) NodeServerConfig() *tls.Config { return m.serverConfig(true) }

// serverConfig returns a complete, usable config for the current material
// and sets GetConfigForClient so that every handshake is served from the
// material current at that moment (Reload takes effect without restart).
// The outer config is complete on its own so that a wrapper which drops
// GetConfigForClient still fails closed. grpc's credentials.NewTLS wraps
// GetConfigForClient and applies its ALPN defaults to the returned config.
func (m *Material) serverConfig(nodeOnly bool) *tls.Config {
	cfg := serverConfigFor(m.cur.Load(), nodeOnly)
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return serverConfigFor(m.cur.Load(), nodeOnly), nil
	}
	return cfg
}

// serverConfigFor builds the per-handshake server config. Chain
// verification is the standard library's (RequireAndVerifyClientCert), so
// cs.VerifiedChains is populated for PeerIdentity. Session tickets are off:
// internal connections are long-lived, and resumption would let a peer
// skip certificate checks after a CA reload.
func serverConfigFor(b *bundle, nodeOnly bool) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{b.cert},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              b.pool,
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := verifiedPeer(cs)
			if err != nil {
				return err
			}
			if nodeOnly && id.Role != RoleNode {
				return fmt.Errorf("pki: peer %s is not a cluster node", id)
			}
			return nil
		},
	}
}

// ClientConfig is for dialing a node (admin or Raft port). It presents our
// certificate and accepts the server only if its chain verifies against
// our CA pool for server use and its identity is a node.
//
// Nodes are often addressed by IP:port that their certificate need not
// name, so when serverName is "" the host name is not checked: the chain
// and the node role are what authenticate the server. The standard
// library's check is switched off (InsecureSkipVerify) only because it
// insists on a name; VerifyConnection then does the full chain
// verification itself, against the pool current at handshake time. When
// serverName is set it is also sent as SNI and checked against the SANs.
func (m *Material) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         serverName,
		InsecureSkipVerify: true, // full verification in VerifyConnection below
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := m.cur.Load().cert
			return &c, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(m.cur.Load(), cs, serverName)
		},
	}
}

// verifyServer verifies the server's chain and role on the dialing side.
func verifyServer(b *bundle, cs tls.ConnectionState, serverName string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("pki: server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         b.pool,
		Intermediates: inter,
		DNSName:       serverName,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("pki: verify server certificate: %w", err)
	}
	id, err := IdentityFromCert(leaf)
	if err != nil {
		return fmt.Errorf("pki: server certificate: %w", err)
	}
	if id.Role != RoleNode {
		return fmt.Errorf("pki: server %s is not a cluster node", id)
	}
	return nil
}

// PeerIdentity returns the identity of the peer of a completed handshake,
// taken from the leaf of the first verified chain. It is meant for the
// serving side (the admin gRPC and Raft listeners), where the configs of
// this package make the standard library verify the client chain. A
// connection without verified chains yields an error, never an unverified
// identity; on the dialing side ClientConfig has already required the
// server to be a node of our CA.
func PeerIdentity(cs tls.ConnectionState) (Identity, error) {
	if !cs.HandshakeComplete {
		return Identity{}, errors.New("pki: TLS handshake not complete")
	}
	return verifiedPeer(cs)
}

// verifiedPeer is PeerIdentity without the completion check, for use
// inside VerifyConnection (which runs before the handshake completes).
func verifiedPeer(cs tls.ConnectionState) (Identity, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, errors.New("pki: peer certificate was not verified")
	}
	id, err := IdentityFromCert(cs.VerifiedChains[0][0])
	if err != nil {
		return Identity{}, fmt.Errorf("pki: peer certificate: %w", err)
	}
	return id, nil
}
