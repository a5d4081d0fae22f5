package pki

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// CreateCA makes a new cluster CA in dir: ca.pem and ca-key.pem (0600),
// creating dir with mode 0700 when missing. It refuses to overwrite an
// existing CA, even partially: replacing a CA silently orphans every
// certificate issued from it. The error then wraps fs.ErrExist.
func CreateCA(dir string) error {
	if err := ensureDir(dir); err != nil {
		return err
	}
	for _, name := range []string{CAFile, CAKeyFile} {
		path := filepath.Join(dir, name)
		ok, err := exists(path)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("pki: refusing to overwrite existing CA file %s (remove it first if you really mean to replace the cluster CA): %w", path, fs.ErrExist)
		}
	}
	ca, err := newCA(time.Now())
	if err != nil {
		return err
	}
	return writePair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile), ca)
}

// CreateNode issues a node certificate for nodeID from the CA in caDir and
// writes dir/node.pem, dir/node-key.pem (0600) and a copy of ca.pem, so
// that dir alone is enough for `serve --tls-ca/--tls-cert/--tls-key`. The
// certificate covers localhost, 127.0.0.1, ::1 and every host given (IP or
// DNS name, "host:port" accepted, duplicates dropped). An existing node
// certificate in dir is replaced: re-issuing is how a node is renewed.
func CreateNode(caDir, dir, nodeID string, hosts []string) error {
	if err := validateName(nodeID); err != nil {
		return fmt.Errorf("pki: node id: %w", err)
	}
	hs, err := normalizeHosts(hosts)
	if err != nil {
		return fmt.Errorf("pki: node %s: %w", nodeID, err)
	}
	ca, err := loadAuthority(caDir)
	if err != nil {
		return err
	}
	if err := ensureDir(dir); err != nil {
		return err
	}
	leaf, err := newLeaf(ca, Identity{Role: RoleNode, Name: nodeID}, hs, time.Now())
	if err != nil {
		return err
	}
	if err := copyCA(ca, caDir, dir); err != nil {
		return err
	}
	return writePair(filepath.Join(dir, NodeFile), filepath.Join(dir, NodeKeyFile), leaf)
}

// CreateClient issues an operator client certificate for name from the CA
// in caDir and writes dir/<name>.pem, dir/<name>-key.pem (0600) and a copy
// of ca.pem. Names that would collide with CA or node files are refused.
func CreateClient(caDir, dir, name string) error {
	if err := validateClientName(name); err != nil {
		return fmt.Errorf("pki: operator name: %w", err)
	}
	ca, err := loadAuthority(caDir)
	if err != nil {
		return err
	}
	if err := ensureDir(dir); err != nil {
		return err
	}
	leaf, err := newLeaf(ca, Identity{Role: RoleOperator, Name: name}, hostSet{}, time.Now())
	if err != nil {
		return err
	}
	if err := copyCA(ca, caDir, dir); err != nil {
		return err
	}
	certName, keyName := ClientFiles(name)
	return writePair(filepath.Join(dir, certName), filepath.Join(dir, keyName), leaf)
}

// copyCA writes the CA certificate into dir unless dir is the CA directory
// itself (then ca.pem is already there and must not be rewritten).
func copyCA(ca *authority, caDir, dir string) error {
	same, err := sameDir(caDir, dir)
	if err != nil {
		return err
	}
	if same {
		return nil
	}
	return writeFile(filepath.Join(dir, CAFile), ca.pem, certMode)
}

// sameDir reports whether a and b name the same existing directory,
// following symlinks, so "./x" and "x/" are recognised as one place.
func sameDir(a, b string) (bool, error) {
	ia, err := os.Stat(a)
	if err != nil {
		return false, fmt.Errorf("pki: stat %s: %w", a, err)
	}
	ib, err := os.Stat(b)
	if err != nil {
		return false, fmt.Errorf("pki: stat %s: %w", b, err)
	}
	return os.SameFile(ia, ib), nil
}
