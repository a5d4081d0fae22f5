package node

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/nodalmerge/nodalmerge-go/controlplane"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
)

// maxKEKFileBytes bounds what is read from --kek-file: the key is 64 hex
// digits and a newline; anything much larger is not a KEK file.
const maxKEKFileBytes = 1024

// loadKEKFile reads the key-encryption key of --kek-file; "" is none. The
// file must not be readable by group or others (like an SSH key): a KEK
// anyone on the host can read protects nothing. Errors name the flag and
// the file, never its content.
func loadKEKFile(path string) (*keyring.KEK, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--kek-file %s: no such file (make one with `nodalmerge kek create --out %s`)", path, path)
		}
		return nil, fmt.Errorf("--kek-file %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--kek-file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("--kek-file %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("--kek-file %s: mode %04o lets group or others read it; restrict it (chmod 600 %s)", path, perm, path)
	}
	text, err := io.ReadAll(io.LimitReader(f, maxKEKFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--kek-file %s: %w", path, err)
	}
	defer clear(text)
	if len(text) > maxKEKFileBytes {
		return nil, fmt.Errorf("--kek-file %s: larger than %d bytes; a KEK file holds 64 hex digits", path, maxKEKFileBytes)
	}
	kek, err := keyring.ParseKEK(text)
	if err != nil {
		return nil, fmt.Errorf("--kek-file %s: %w", path, err)
	}
	return kek, nil
}

// kekCluster is the admin server's view of the store on a node with a
// KEK: the store itself plus the KEK (controlplane.KEKHolder), so the
// control plane seals what it generates and opens what it signs with.
type kekCluster struct {
	*raftstore.Store
	kek *keyring.KEK
}

func (c kekCluster) KEK() *keyring.KEK { return c.kek }

// adminCluster answers the Cluster the admin server works on.
func (n *Node) adminCluster() controlplane.Cluster {
	if n.kek == nil {
		return n.store
	}
	return kekCluster{Store: n.store, kek: n.kek}
}
