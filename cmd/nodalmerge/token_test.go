package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// runRoot runs the CLI in-process with args and answers its error and output.
func runRoot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func durationOf(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
func timestampOf(t time.Time) *timestamppb.Timestamp  { return timestamppb.New(t) }

func TestConnDefaultsComeFromStateDir(t *testing.T) {
	f := connFlags{stateDir: "/s", tlsKey: "/elsewhere/key.pem"}
	f.resolve(nil)
	if f.tlsCA != "/s/tls/ca.pem" || f.tlsCert != "/s/tls/operator.pem" || f.tlsKey != "/elsewhere/key.pem" ||
		f.tokenFile != "/s/bootstrap-operator.token" || f.tokenFileSet {
		t.Errorf("resolved %+v", f)
	}
	// --admin-addr is another spelling of --admin.
	cmd := newTokenOperator()
	if err := cmd.ParseFlags([]string{"--admin-addr", "10.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("admin").Value.String(); got != "10.0.0.1:1" {
		t.Errorf("--admin-addr set --admin to %q", got)
	}
}

// TestCallerTokenPrecedence: --token, then an explicit --token-file, then
// NODALMERGE_TOKEN, then the default file.
func TestCallerTokenPrecedence(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	def := write("default.token", "from-default\n")
	explicit := write("explicit.token", "  from-file \n")
	for _, tc := range []struct {
		name, flag, env, file string
		fileSet               bool
		want                  string
	}{
		{"flag wins", "from-flag", "from-env", explicit, true, "from-flag"},
		{"explicit file beats env", "", "from-env", explicit, true, "from-file"},
		{"env beats the default file", "", "from-env", def, false, "from-env"},
		{"default file", "", "", def, false, "from-default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envToken, tc.env)
			c := connFlags{token: tc.flag, tokenFile: tc.file, tokenFileSet: tc.fileSet}
			got, err := c.callerToken()
			if err != nil || got != tc.want {
				t.Fatalf("callerToken = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestTokenOperatorErrorsNameTheFlag(t *testing.T) {
	t.Setenv(envToken, "")
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "caller.token")
	if err := os.WriteFile(full, []byte("a.b.c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"subject and caps are required", nil, `required flag(s) "caps", "subject" not set`},
		{"missing token file", []string{"--subject", "s", "--caps", "cluster.read", "--state-dir", filepath.Join(dir, "none")}, "--token-file: read the calling token"},
		{"empty token file", []string{"--subject", "s", "--caps", "cluster.read", "--token-file", empty}, "--token-file " + empty + ": file is empty"},
		{"non-positive ttl", []string{"--subject", "s", "--caps", "cluster.read", "--ttl", "0s"}, "--ttl 0s: must be positive"},
		{"missing TLS material", []string{"--subject", "s", "--caps", "cluster.read", "--token-file", full, "--state-dir", dir}, "--tls-ca/--tls-cert/--tls-key:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runRoot(t, append([]string{"token", "operator"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(out, "a.b.c") || strings.Contains(err.Error(), "a.b.c") {
				t.Errorf("output echoes the calling token: %q", out)
			}
		})
	}
}

// newSeedFile runs `token room-key` and answers the seed file and the
// printed public key and kid.
func newSeedFile(t *testing.T) (path string, pub ed25519.PublicKey, kid string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "room.seed")
	out, errOut, err := runSplit(t, "token", "room-key", "--out", path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^public_key ([0-9a-f]{64})\nkid (rk-[0-9a-f]{12})\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("room-key stdout %q", out)
	}
	pub, _ = hex.DecodeString(m[1])
	if m[2] != keyring.RoomKeyID(pub) {
		t.Fatalf("printed kid %s, keyring derives %s", m[2], keyring.RoomKeyID(pub))
	}
	seed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out+errOut, strings.TrimSpace(string(seed))) {
		t.Fatal("room-key printed the seed")
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("seed file mode %v, %v", info.Mode(), err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(seed) {
		t.Fatal("seed file is not 64 hex characters and a newline")
	}
	if priv := ed25519.NewKeyFromSeed(mustDecode(t, strings.TrimSpace(string(seed)))); !priv.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatal("the printed public key is not the seed's")
	}
	return path, pub, m[2]
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTokenRoom mints offline and verifies the result with the token
// package, as the data plane will.
func TestTokenRoom(t *testing.T) {
	seedFile, pub, kid := newSeedFile(t)
	peer := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey)
	before := time.Now()
	out, errOut, err := runSplit(t, "token", "room", "--room", "lobby", "--peer-pubkey", strings.ToUpper(hex.EncodeToString(peer)),
		"--caps", "write:intent/**,room.admin", "--ttl", "2h", "--key-file", seedFile, "--kid", kid)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("stdout is not one line: %q", out)
	}
	tok, err := token.ParseRoomToken(json.RawMessage(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := token.VerifyRoom(tok, "lobby", peer, []ed25519.PublicKey{pub}, time.Now()); err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if err := token.VerifyRoom(tok, "lobby2", peer, []ed25519.PublicKey{pub}, time.Now()); err == nil {
		t.Fatal("token verifies in another room")
	}
	exp := time.Unix(int64(tok.Expiry), 0)
	if exp.Before(before.Add(2*time.Hour-time.Second)) || exp.After(time.Now().Add(2*time.Hour)) {
		t.Fatalf("expiry %v, want about 2h from now", exp)
	}
	if tok.Kid != kid || strings.Join(tok.Caps, ",") != "room.admin,write:intent/**" {
		t.Fatalf("token %+v", tok)
	}
	if !strings.Contains(errOut, "room token "+tok.ID()+" for room lobby, key "+kid+", expires ") || strings.Contains(errOut, tok.Sig) {
		t.Fatalf("stderr %q", errOut)
	}
	if strings.Contains(errOut, "warning") {
		t.Fatalf("warned about a 0600 seed file: %q", errOut)
	}

	// A group-readable seed still works, with a warning.
	if err := os.Chmod(seedFile, 0o640); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = runSplit(t, "token", "room", "--room", "lobby", "--peer-pubkey", hex.EncodeToString(peer), "--key-file", seedFile)
	if err != nil || !strings.Contains(errOut, "warning: --key-file "+seedFile+" is readable by others (mode 0640)") {
		t.Fatalf("group-readable seed: %v, stderr %q", err, errOut)
	}

	// room-key never overwrites.
	if _, _, err := runSplit(t, "token", "room-key", "--out", seedFile); err == nil || !strings.Contains(err.Error(), "file exists") {
		t.Fatalf("room-key over an existing file: %v", err)
	}
}

func TestTokenRoomErrors(t *testing.T) {
	seedFile, _, _ := newSeedFile(t)
	dir := t.TempDir()
	secret := strings.Repeat("5a", 31) // 62 hex characters: not a seed
	badSeed := filepath.Join(dir, "bad.seed")
	if err := os.WriteFile(badSeed, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	peer := strings.Repeat("ab", 32)
	base := func(extra ...string) []string {
		return append([]string{"token", "room", "--room", "lobby", "--peer-pubkey", peer, "--key-file", seedFile}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"required flags", []string{"token", "room"}, `required flag(s) "key-file", "peer-pubkey", "room" not set`},
		{"bad room", base("--room", "a/b"), `--room "a/b": invalid room name`},
		{"bad peer", base("--peer-pubkey", "xyz"), `--peer-pubkey: "xyz" is not 64 hex characters`},
		{"invalid UTF-8 cap", base("--caps", "ok,\xff"), "--caps: cap 1 is not valid UTF-8"},
		{"cluster.node", base("--caps", "cluster.node"), "--caps: capability cluster.node is held only by node certificates"},
		{"duplicate cap", base("--caps", "room.admin,room.admin"), "--caps: cap 1 (room.admin) is listed twice"},
		{"bad glob", base("--caps", "read:a//b"), "--caps: cap 0 (read:a//b):"},
		{"ttl", base("--ttl", "0s"), "--ttl 0s: must be positive"},
		{"missing key file", base("--key-file", filepath.Join(dir, "none")), "--key-file: open"},
		{"bad key file", base("--key-file", badSeed), "--key-file " + badSeed + ": want the room key's 32-byte Ed25519 seed as 64 hex characters"},
		{"key file is a folder", base("--key-file", dir), "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runSplit(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if out != "" || strings.Contains(err.Error()+errOut, secret) {
				t.Fatalf("stdout %q; error or stderr echoes the key file: %v %q", out, err, errOut)
			}
		})
	}
}
