package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nodalmerge/nodalmerge-go/internal/grpccode"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nodalmerge/nodalmerge-go/pki"
)

// Defaults of the connection flags: the embedded layout that a bare
// `nodalmerge serve` writes into ./.nodalmerge (SPEC section 1).
const (
	defaultAdminAddr = "127.0.0.1:7879"
	defaultStateDir  = ".nodalmerge"
	defaultCallLimit = 30 * time.Second
	// envToken names the variable holding the calling operator token.
	envToken = "NODALMERGE_TOKEN"
	// operatorCertName is the name of the operator certificate `serve`
	// generates: STATE-DIR/tls/operator.pem and operator-key.pem.
	operatorCertName = "operator"
	// mdConsistency is the metadata key the control plane reads to serve a
	// read from the answering node's state without a leader round trip.
	mdConsistency = "nodalmerge-consistency"
)

// connFlags are the flags every command that calls the admin API shares
// (`admin ...` and `token operator`): where the node is, the mTLS material
// and the calling operator token. File flags left empty default to the
// files `serve` writes into --state-dir, so on the machine that runs a dev
// node no connection flag is needed.
type connFlags struct {
	addr, stateDir         string
	tlsCA, tlsCert, tlsKey string
	tokenFile, token       string
	timeout                time.Duration
	// tokenFileSet records an explicit --token-file, which wins over
	// NODALMERGE_TOKEN; the default file does not.
	tokenFileSet bool
}

// register adds the connection flags to fs (see adminAddrAlias).
func (c *connFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.addr, "admin", defaultAdminAddr, "admin gRPC address of a node (also --admin-addr)")
	fs.StringVar(&c.stateDir, "state-dir", defaultStateDir, "state folder whose TLS material and bootstrap token are the defaults below")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "cluster CA bundle (default STATE-DIR/tls/ca.pem)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "operator client certificate (default STATE-DIR/tls/operator.pem)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "operator client key (default STATE-DIR/tls/operator-key.pem)")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the calling operator token (default STATE-DIR/bootstrap-operator.token)")
	fs.StringVar(&c.token, "token", "", "the calling operator token itself; visible to other local users in the process list, so prefer "+envToken+" or --token-file")
	fs.DurationVar(&c.timeout, "timeout", defaultCallLimit, "deadline of each admin call")
}

// adminAddrAlias makes --admin-addr another spelling of --admin. Install
// it with SetNormalizeFunc on a command's own flags, or with
// SetGlobalNormalizationFunc on a command whose subcommands inherit them.
func adminAddrAlias(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if name == "admin-addr" {
		name = "admin"
	}
	return pflag.NormalizedName(name)
}

// resolve fills the file flags left empty from --state-dir and records
// which flags were given, from the parsed flag set fs.
func (c *connFlags) resolve(fs *pflag.FlagSet) {
	def := func(v *string, name ...string) {
		if *v == "" {
			*v = filepath.Join(append([]string{c.stateDir}, name...)...)
		}
	}
	cert, key := pki.ClientFiles(operatorCertName)
	def(&c.tlsCA, "tls", pki.CAFile)
	def(&c.tlsCert, "tls", cert)
	def(&c.tlsKey, "tls", key)
	c.tokenFileSet = fs != nil && fs.Changed("token-file")
	def(&c.tokenFile, "bootstrap-operator.token")
}

// callerToken answers the calling operator token: --token, else an
// explicit --token-file, else NODALMERGE_TOKEN, else the default token
// file. Errors name the flag or variable, never the token.
func (c *connFlags) callerToken() (string, error) {
	if tok := strings.TrimSpace(c.token); tok != "" {
		return tok, nil
	}
	if !c.tokenFileSet {
		if tok := strings.TrimSpace(os.Getenv(envToken)); tok != "" {
			return tok, nil
		}
	}
	raw, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--token-file: read the calling token: %w (or set --token or %s)", err, envToken)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s: file is empty", c.tokenFile)
	}
	return tok, nil
}

// adminConn is a connection to a node's admin API with the caller's
// token, ready for calls.
type adminConn struct {
	conn    *grpc.ClientConn
	token   string
	timeout time.Duration
}

// dial loads the token and the TLS material and makes the client. The
// connection is lazy: a wrong address shows up as UNAVAILABLE on the
// first call, bounded by --timeout.
func (c *connFlags) dial() (*adminConn, error) {
	tok, err := c.callerToken()
	if err != nil {
		return nil, err
	}
	material, err := pki.Load(c.tlsCA, c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca/--tls-cert/--tls-key: %w", err)
	}
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(credentials.NewTLS(material.ClientConfig(""))))
	if err != nil {
		return nil, fmt.Errorf("--admin %s: %w", c.addr, err)
	}
	timeout := c.timeout
	if timeout <= 0 {
		timeout = defaultCallLimit
	}
	return &adminConn{conn: conn, token: tok, timeout: timeout}, nil
}

func (a *adminConn) Close() error { return a.conn.Close() }

// ctx returns a call context with the bearer token, the deadline and,
// for reads with --stale, the stale-read metadata.
func (a *adminConn) ctx(parent context.Context, stale bool) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, a.timeout)
	md := []string{"authorization", "Bearer " + a.token}
	if stale {
		md = append(md, mdConsistency, "stale")
	}
	return metadata.AppendToOutgoingContext(ctx, md...), cancel
}

// callError turns a gRPC error into the CLI's plain form
// "CODE: message" (e.g. "PERMISSION_DENIED: reject.control_plane_forbidden:
// command=keys.rotate requires=cluster.admin").
func callError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return errors.New(grpccode.Name(st.Code()) + ": " + st.Message())
}
