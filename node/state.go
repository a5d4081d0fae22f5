package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// stateFolder is the node's private folder: TLS material, node id, the
// server keypair, the bootstrap token and (with --store) Raft's files.
type stateFolder struct {
	dir     string
	durable bool
}

func openStateFolder(storeDir string) (*stateFolder, error) {
	dir, durable := storeDir, storeDir != ""
	if !durable {
		dir = DefaultStateDir
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("state folder %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("state folder %s: %w", abs, err)
	}
	// MkdirAll keeps the mode of a folder that already exists: tighten it.
	if err := os.Chmod(abs, 0o700); err != nil {
		return nil, fmt.Errorf("state folder %s: %w", abs, err)
	}
	return &stateFolder{dir: abs, durable: durable}, nil
}

func (s *stateFolder) path(name ...string) string {
	return filepath.Join(append([]string{s.dir}, name...)...)
}

func (s *stateFolder) tlsDir() string        { return s.path("tls") }
func (s *stateFolder) tokenPath() string     { return s.path("bootstrap-operator.token") }
func (s *stateFolder) raftDir() string       { return s.path() }
func (s *stateFolder) roomsDir() string      { return s.path("rooms") }
func (s *stateFolder) nodeIDPath() string    { return s.path("node-id") }
func (s *stateFolder) serverKeyPath() string { return s.path("server-key") }

// nodeID returns the configured id, or the one kept in the state folder,
// making and keeping a new one the first time. It is stable per state folder
// so that a restart with the same --store is the same Raft member.
func (s *stateFolder) nodeID(configured string) (string, error) {
	stored, err := os.ReadFile(s.nodeIDPath())
	switch {
	case err == nil:
		id := strings.TrimSpace(string(stored))
		if configured != "" && configured != id && s.durable {
			return "", fmt.Errorf("--node-id %q: this store belongs to node %q", configured, id)
		}
		if configured != "" {
			id = configured
		}
		return id, s.writePrivate(s.nodeIDPath(), []byte(id+"\n"))
	case errors.Is(err, fs.ErrNotExist):
	default:
		return "", fmt.Errorf("read node id: %w", err)
	}
	id := configured
	if id == "" {
		var b [5]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("make node id: %w", err)
		}
		id = "node-" + hex.EncodeToString(b[:])
	}
	return id, s.writePrivate(s.nodeIDPath(), []byte(id+"\n"))
}

// serverKey returns the node's own Ed25519 keypair (the room super-peer key),
// made once and kept in the state folder.
func (s *stateFolder) serverKey() (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(s.serverKeyPath())
	switch {
	case err == nil:
		seed, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("server key %s: not a hex Ed25519 seed", s.serverKeyPath())
		}
		return ed25519.NewKeyFromSeed(seed), nil
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("read server key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make server key: %w", err)
	}
	if err := s.writePrivate(s.serverKeyPath(), []byte(hex.EncodeToString(priv.Seed())+"\n")); err != nil {
		return nil, err
	}
	return priv, nil
}

// writePrivate writes a 0600 file atomically (temp file + rename) so that a
// crash never leaves a half-written secret behind.
func (s *stateFolder) writePrivate(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
