package node

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

func writeKEKFile(t *testing.T, mode os.FileMode) (string, *keyring.KEK) {
	t.Helper()
	text, err := keyring.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(path, text, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
	kek, err := keyring.ParseKEK(text)
	if err != nil {
		t.Fatal(err)
	}
	return path, kek
}

func TestLoadKEKFile(t *testing.T) {
	good, kek := writeKEKFile(t, 0o600)
	got, err := loadKEKFile(good)
	if err != nil || got.ID() != kek.ID() {
		t.Fatalf("loadKEKFile = %v, %v", got, err)
	}
	if got, err := loadKEKFile(""); got != nil || err != nil {
		t.Fatalf("no file: %v, %v", got, err)
	}
	readable, _ := writeKEKFile(t, 0o640)
	malformed := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(malformed, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		readable:                        "lets group or others read it",
		malformed:                       "64 hex digits",
		filepath.Join(t.TempDir(), "x"): "no such file",
		t.TempDir():                     "not a regular file",
	} {
		_, err := loadKEKFile(path)
		if err == nil || !strings.HasPrefix(err.Error(), "--kek-file "+path+":") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error naming --kek-file and saying %q", path, err, want)
		}
	}
	// A node refuses to start with it.
	cfg := testConfig(t.TempDir())
	cfg.KEKFile = readable
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n, err := Start(ctx, cfg); err == nil || !strings.Contains(err.Error(), "--kek-file") {
		if n != nil {
			stopNode(t, n)
		}
		t.Fatalf("start with a group-readable KEK file: %v", err)
	}
}

// sealedRun runs a durable single-node cluster (sealed with a KEK when
// kekFile is set), rotates both purposes, snapshots, stops, and answers
// the seeds of every key the cluster ever held and the bytes of every
// file in its store.
func sealedRun(t *testing.T, dir, kekFile string, kek *keyring.KEK) (seeds [][]byte, files map[string][]byte) {
	t.Helper()
	cfg := testConfig(dir)
	cfg.KEKFile = kekFile
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := operatorConn(t, n)
	boot := readToken(t, n)
	for _, p := range []string{"room-token", "operator"} {
		if _, err := adminv1.NewKeyServiceClient(conn).RotateKey(withToken(ctx, boot),
			&adminv1.RotateKeyRequest{Purpose: p, Grace: durationpb.New(time.Hour)}); err != nil {
			t.Fatalf("rotate %s: %v", p, err)
		}
	}
	// The new operator key signs: minting proves the node opens it.
	if _, err := adminv1.NewTokenServiceClient(conn).MintOperatorToken(withToken(ctx, boot),
		&adminv1.MintOperatorTokenRequest{Subject: "after", Caps: []string{"cluster.read"}}); err != nil {
		t.Fatalf("mint with the rotated operator key: %v", err)
	}
	if _, _, err := n.Store().TakeSnapshot(ctx); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	keys := n.Store().Keys()
	if len(keys) != 4 {
		t.Fatalf("%d keys, want 2 initial + 2 rotated", len(keys))
	}
	for _, k := range keys {
		if kek != nil {
			if len(k.GetPrivateSeed()) != 0 || k.GetKekId() != kek.ID() {
				t.Fatalf("key %s is not sealed with the KEK", k.GetKid())
			}
		}
		seed, err := keyring.Seed(k, kek)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, seed)
	}
	stopNode(t, n)
	files = map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		files[path] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return seeds, files
}

func filesHolding(files map[string][]byte, secret []byte) []string {
	var out []string
	for path, b := range files {
		if bytes.Contains(b, secret) {
			out = append(out, path)
		}
	}
	return out
}

// TestSealedClusterStoresNoSeed: with --kek-file no key seed is in any file
// of the store (Raft WAL, stable store, snapshots), bootstrap keys
// included; the same run without a KEK shows the search finds plain seeds.
// A restart without the KEK verifies tokens but refuses to sign, naming the
// KEK it needs.
func TestSealedClusterStoresNoSeed(t *testing.T) {
	if testing.Short() {
		t.Skip("two durable nodes")
	}
	plainSeeds, plainFiles := sealedRun(t, t.TempDir(), "", nil)
	found := 0
	for _, s := range plainSeeds {
		if len(filesHolding(plainFiles, s)) > 0 {
			found++
		}
	}
	if found != len(plainSeeds) {
		t.Fatalf("control run: only %d of %d plain seeds found in the store files; the search proves nothing", found, len(plainSeeds))
	}

	dir := t.TempDir()
	kekFile, kek := writeKEKFile(t, 0o600)
	seeds, files := sealedRun(t, dir, kekFile, kek)
	var sawWAL, sawSnapshot bool
	for path := range files {
		sawWAL = sawWAL || strings.Contains(path, string(filepath.Separator)+"wal"+string(filepath.Separator))
		sawSnapshot = sawSnapshot || strings.Contains(path, "snapshots")
	}
	if !sawWAL || !sawSnapshot {
		t.Fatalf("the store has no WAL or snapshot files to search: %v", files)
	}
	for i, s := range seeds {
		if where := filesHolding(files, s); len(where) > 0 {
			t.Errorf("seed of key %d is in the clear in %v", i, where)
		}
	}

	// Restart on the same store without the KEK: reads and verification
	// work, signing is refused with the KEK named.
	n := startNode(t, testConfig(dir))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	boot := readToken(t, n)
	conn := operatorConn(t, n)
	if _, err := adminv1.NewClusterServiceClient(conn).GetStatus(withToken(ctx, boot), &adminv1.GetStatusRequest{}); err != nil {
		t.Fatalf("verification without the KEK: %v", err)
	}
	_, err := adminv1.NewTokenServiceClient(conn).MintOperatorToken(withToken(ctx, boot),
		&adminv1.MintOperatorTokenRequest{Subject: "x", Caps: []string{"cluster.read"}})
	want := "is sealed with KEK " + kek.ID() + "; start with --kek-file holding that key"
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), want) {
		t.Fatalf("mint without the KEK: %v; want FAILED_PRECONDITION saying %q", err, want)
	}
	if kid, _, err := keyring.Signer(n.Store().Keys(), statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN, time.Now()); err == nil {
		t.Fatalf("signed with sealed key %s without the KEK", kid)
	}
}
