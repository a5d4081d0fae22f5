package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names inside a TLS directory, as SPEC section 1 fixes them.
const (
	CAFile      = "ca.pem"
	CAKeyFile   = "ca-key.pem"
	NodeFile    = "node.pem"
	NodeKeyFile = "node-key.pem"
	// DevOperatorName is the operator certificate EnsureDev makes
	// (operator.pem, operator-key.pem).
	DevOperatorName = "operator"
)

// File modes: private material is readable by the owner only; the
// directories holding it are not even listable by others.
const (
	dirMode  fs.FileMode = 0o700
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
)

// ClientFiles returns the certificate and key file names CreateClient writes
// for name: "<name>.pem" and "<name>-key.pem".
func ClientFiles(name string) (cert, key string) {
	return name + ".pem", name + "-key.pem"
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		// The message names no key material: only the operation failed.
		return nil, fmt.Errorf("pki: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ensureDir creates dir with mode 0700, and tightens it to 0700 if it
// already existed: MkdirAll honours the umask and leaves existing
// directories alone, so the Chmod is what actually guarantees the mode.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("pki: create directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("pki: set mode of directory %s: %w", dir, err)
	}
	return nil
}

// writeFile writes data to path atomically (temp file in the same
// directory, fsync, rename) so a crash never leaves a half-written key or a
// certificate that does not match its key. The temp file gets its final
// mode before any byte is written, so a key is never briefly world-readable.
func writeFile(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("pki: set mode of %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("pki: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pki: rename into %s: %w", path, err)
	}
	ok = true
	return syncDir(dir)
}

// syncDir makes a rename in dir durable: without it a crash can forget
// the new directory entry even though the file's data was synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pki: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("pki: sync directory %s: %w", dir, err)
	}
	return nil
}

// writePair writes a certificate and its key. The key is written first so
// that a crash in between leaves an old certificate with a new key, which
// loadPair rejects as a mismatch, rather than a silent mix.
func writePair(certPath, keyPath string, is *issued) error {
	if err := writeFile(keyPath, is.keyPEM, keyMode); err != nil {
		return err
	}
	return writeFile(certPath, is.certPEM, certMode)
}

// exists reports whether path exists; errors other than "not exist" are
// returned so that a permission problem is not mistaken for absence.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("pki: stat %s: %w", path, err)
	}
}

// readCerts parses every CERTIFICATE block of a PEM file. Other block types
// are refused so that a key pasted into a certificate file is noticed.
func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: read certificate file %s: %w", path, err)
	}
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("pki: certificate file %s contains a %q PEM block, want only CERTIFICATE", path, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: parse certificate in %s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("pki: certificate file %s contains no PEM CERTIFICATE block", path)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("pki: certificate file %s has trailing data that is not PEM", path)
	}
	return certs, nil
}

// readKey parses a PKCS#8, SEC 1 (EC) or PKCS#1 private key. Parse errors
// are reported without the underlying detail, which could quote key bytes.
func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: read key file %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("pki: key file %s contains no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("pki: key file %s contains a %q PEM block, want a private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: key file %s does not hold a valid private key", path)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: key file %s holds an unsupported key type %T", path, key)
	}
	return signer, nil
}

// publicKeyEqual is implemented by all standard library public keys.
type publicKeyEqual interface {
	Equal(crypto.PublicKey) bool
}

// keyMatches reports whether key is the private half of cert's public key.
func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(publicKeyEqual)
	return ok && pub.Equal(cert.PublicKey)
}

// loadAuthority reads caDir/ca.pem and caDir/ca-key.pem and checks that
// they belong together and that the certificate really is a CA.
func loadAuthority(caDir string) (*authority, error) {
	certPath := filepath.Join(caDir, CAFile)
	keyPath := filepath.Join(caDir, CAKeyFile)
	certs, err := readCerts(certPath)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("pki: CA file %s holds %d certificates, want exactly one", certPath, len(certs))
	}
	ca := certs[0]
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certPath)
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !keyMatches(ca, key) {
		return nil, fmt.Errorf("pki: CA key %s does not match CA certificate %s", keyPath, certPath)
	}
	return &authority{cert: ca, pem: encodeCert(ca.Raw), key: key}, nil
}
