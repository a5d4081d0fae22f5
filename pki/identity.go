package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
)

// Role is what a certificate entitles its holder to be.
type Role string

const (
	// RoleNode marks a cluster node: it may join the Raft transport and
	// serve the admin API.
	RoleNode Role = "node"
	// RoleOperator marks a human or service operator: it may call the admin
	// API (subject to its bearer token) but never speaks Raft.
	RoleOperator Role = "operator"
)

// uriScheme is the scheme of the role-marking URI SAN.
const uriScheme = "nodalmerge"

// Identity is the verified role and name of a certificate holder.
type Identity struct {
	Role Role
	// Name is the node id for RoleNode and the operator name for
	// RoleOperator.
	Name string
}

// String returns "node:<id>" or "operator:<name>", the form used in logs and
// audit events.
func (i Identity) String() string {
	return string(i.Role) + ":" + i.Name
}

// uri returns the URI SAN that marks a certificate with this identity.
func (i Identity) uri() *url.URL {
	return &url.URL{Scheme: uriScheme, Host: string(i.Role), Path: "/" + i.Name}
}

// errNoIdentity is returned for certificates without a role URI.
var errNoIdentity = errors.New("certificate carries no nodalmerge:// identity URI")

// IdentityFromCert reads the identity from the certificate's nodalmerge://
// URI SAN. Other URI SANs (SPIFFE ids, for example) are ignored; a
// certificate with no nodalmerge URI, or with more than one, is rejected
// because a holder must have exactly one role.
//
// IdentityFromCert does not verify the certificate: callers must only pass
// certificates from a verified chain (see PeerIdentity).
func IdentityFromCert(c *x509.Certificate) (Identity, error) {
	if c == nil {
		return Identity{}, errors.New("pki: nil certificate")
	}
	var found []*url.URL
	for _, u := range c.URIs {
		if u != nil && u.Scheme == uriScheme {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return Identity{}, fmt.Errorf("pki: %w", errNoIdentity)
	case 1:
	default:
		return Identity{}, fmt.Errorf("pki: certificate carries %d nodalmerge:// identity URIs, want exactly one", len(found))
	}
	u := found[0]
	role := Role(u.Host)
	if role != RoleNode && role != RoleOperator {
		return Identity{}, fmt.Errorf("pki: identity URI has unknown role %q", u.Host)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || len(u.Path) < 2 || u.Path[0] != '/' {
		return Identity{}, fmt.Errorf("pki: malformed identity URI %q", u.String())
	}
	name := u.Path[1:]
	if err := validateName(name); err != nil {
		return Identity{}, fmt.Errorf("pki: identity URI %q: %w", u.String(), err)
	}
	return Identity{Role: role, Name: name}, nil
}
