package controlplane

import (
	"crypto/tls"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// TestClientWithoutClusterCertificateNeverReachesAHandler covers both ways
// in without a cluster certificate: none at all, and one from a foreign CA.
// Each client trusts the real CA, so it is the server that refuses.
func TestClientWithoutClusterCertificateNeverReachesAHandler(t *testing.T) {
	e := newEnv(t, envOptions{})
	foreign := pkitest.New(t).Operator(t, "eve").ClientConfig("")
	foreignCert, err := foreign.GetClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil {
		t.Fatalf("foreign certificate: %v", err)
	}
	foreignCfg := e.pki.Operator(t, "foreign-carrier").ClientConfig("")
	foreignCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return foreignCert, nil
	}
	foreignConn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(foreignCfg)))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = foreignConn.Close() })

	tok := e.mint(t, e.operatorClaims("cluster.read"))
	for name, conn := range map[string]*grpc.ClientConn{
		"no certificate":  e.dial(t, nil),
		"foreign CA cert": foreignConn,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := adminv1.NewClusterServiceClient(conn).GetStatus(bearer(callCtx(t), tok), &adminv1.GetStatusRequest{})
			if code := status.Code(err); code != codes.Unavailable {
				t.Fatalf("GetStatus error = %v; want Unavailable", err)
			}
			if events := e.audit.take(); len(events) != 0 {
				t.Fatalf("a call without a cluster certificate reached the interceptors: %+v", events)
			}
		})
	}
}
