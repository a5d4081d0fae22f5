package pki_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/pki"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %o, want %o", path, got, want)
	}
}

func approx(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if d := got - want; d < -time.Hour || d > time.Hour {
		t.Errorf("%s lifetime %v, want about %v", what, got, want)
	}
}

func TestCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	if err := pki.CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Join(dir, "ca-key.pem"), 0o600)
	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	if !ca.IsCA || ca.MaxPathLen != 0 || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("CA constraints wrong: isCA=%v maxPathLen=%d", ca.IsCA, ca.MaxPathLen)
	}
	approx(t, "CA", ca.NotAfter.Sub(time.Now()), 10*365*24*time.Hour)
}

func TestCreateCARefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	if err := pki.CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	err := pki.CreateCA(dir)
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second CreateCA = %v, want a refusal wrapping fs.ErrExist", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if !bytes.Equal(before, after) {
		t.Fatal("CA key changed after a refused CreateCA")
	}
	// Half a CA is still a CA: refuse too.
	if err := os.Remove(filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	if err := pki.CreateCA(dir); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateCA over a lone ca-key.pem = %v, want fs.ErrExist", err)
	}
}

func TestCreateNode(t *testing.T) {
	caDir, dir := t.TempDir(), filepath.Join(t.TempDir(), "n1")
	if err := pki.CreateCA(caDir); err != nil {
		t.Fatal(err)
	}
	hosts := []string{"node1.example.com", "10.0.0.7", "10.0.0.7:7880", "NODE1.example.com", "[2001:db8::1]", "", "0.0.0.0"}
	if err := pki.CreateNode(caDir, dir, "n1", hosts); err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Join(dir, "node-key.pem"), 0o600)
	caBytes, _ := os.ReadFile(filepath.Join(caDir, "ca.pem"))
	copied, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if !bytes.Equal(caBytes, copied) {
		t.Fatal("ca.pem was not copied into the node directory")
	}
	c := readCert(t, filepath.Join(dir, "node.pem"))
	if want := []string{"localhost", "node1.example.com"}; !slices.Equal(c.DNSNames, want) {
		t.Errorf("DNS SANs %v, want %v", c.DNSNames, want)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "::1", "10.0.0.7", "2001:db8::1"}; !slices.Equal(ips, want) {
		t.Errorf("IP SANs %v, want %v", ips, want)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "node1.example.com", "10.0.0.7", "2001:db8::1"} {
		if err := c.VerifyHostname(h); err != nil {
			t.Errorf("node cert does not cover %s: %v", h, err)
		}
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != "nodalmerge://node/n1" || c.Subject.CommonName != "n1" {
		t.Errorf("URIs %v CN %q", c.URIs, c.Subject.CommonName)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(c.ExtKeyUsage, want) {
		t.Errorf("ExtKeyUsage %v, want %v", c.ExtKeyUsage, want)
	}
	approx(t, "node", c.NotAfter.Sub(time.Now()), 365*24*time.Hour)
	ca := readCert(t, filepath.Join(caDir, "ca.pem"))
	if err := c.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("node cert not signed by CA: %v", err)
	}

	// The whole directory is enough to load the material.
	m, err := pki.Load(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Identity().String(); got != "node:n1" {
		t.Fatalf("identity %q", got)
	}
}

func TestCreateNodeInCADir(t *testing.T) {
	dir := t.TempDir()
	if err := pki.CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := pki.CreateNode(dir, dir, "n1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Load(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem")); err != nil {
		t.Fatal(err)
	}
}

func TestCreateNodeRejectsBadInput(t *testing.T) {
	caDir := t.TempDir()
	if err := pki.CreateCA(caDir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id    string
		hosts []string
	}{
		{"", nil},
		{"../evil", nil},
		{"-n", nil},
		{"n 1", nil},
		{"n1", []string{"bad host"}},
		{"n1", []string{"a..b"}},
		{"n1", []string{"fe80::1%eth0"}},
	} {
		if err := pki.CreateNode(caDir, t.TempDir(), tc.id, tc.hosts); err == nil {
			t.Errorf("CreateNode(%q, %q) succeeded", tc.id, tc.hosts)
		}
	}
	if err := pki.CreateNode(t.TempDir(), t.TempDir(), "n1", nil); err == nil || !strings.Contains(err.Error(), "ca.pem") {
		t.Errorf("CreateNode without a CA = %v, want an error naming ca.pem", err)
	}
}

func TestCreateClient(t *testing.T) {
	caDir, dir := t.TempDir(), filepath.Join(t.TempDir(), "ops")
	if err := pki.CreateCA(caDir); err != nil {
		t.Fatal(err)
	}
	if err := pki.CreateClient(caDir, dir, "alice"); err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Join(dir, "alice-key.pem"), 0o600)
	c := readCert(t, filepath.Join(dir, "alice.pem"))
	if c.Subject.CommonName != "alice" || len(c.URIs) != 1 || c.URIs[0].String() != "nodalmerge://operator/alice" {
		t.Errorf("CN %q URIs %v", c.Subject.CommonName, c.URIs)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage %v, want ClientAuth only", c.ExtKeyUsage)
	}
	if len(c.DNSNames) != 0 || len(c.IPAddresses) != 0 {
		t.Errorf("operator cert has host SANs %v %v", c.DNSNames, c.IPAddresses)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err != nil {
		t.Error("ca.pem not copied")
	}
	for _, bad := range []string{"ca", "node", "ca-key", "bob-key", "", "a/b", ".hidden"} {
		if err := pki.CreateClient(caDir, caDir, bad); err == nil {
			t.Errorf("CreateClient(%q) succeeded", bad)
		}
	}
	// The refused "ca" must not have touched the CA.
	if _, err := pki.Load(filepath.Join(caDir, "ca.pem"), filepath.Join(dir, "alice.pem"), filepath.Join(dir, "alice-key.pem")); err != nil {
		t.Fatalf("CA damaged by a refused name: %v", err)
	}
}

func TestSerialsDistinct(t *testing.T) {
	caDir := t.TempDir()
	if err := pki.CreateCA(caDir); err != nil {
		t.Fatal(err)
	}
	d1, d2 := t.TempDir(), t.TempDir()
	if err := pki.CreateNode(caDir, d1, "n1", nil); err != nil {
		t.Fatal(err)
	}
	if err := pki.CreateNode(caDir, d2, "n1", nil); err != nil {
		t.Fatal(err)
	}
	a, b := readCert(t, filepath.Join(d1, "node.pem")), readCert(t, filepath.Join(d2, "node.pem"))
	if a.SerialNumber.Sign() <= 0 || a.SerialNumber.Cmp(b.SerialNumber) == 0 {
		t.Fatalf("serials %v %v", a.SerialNumber, b.SerialNumber)
	}
}
