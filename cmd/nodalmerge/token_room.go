package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pathglob"
	"github.com/nodalmerge/nodalmerge-go/roomname"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// maxSeedFileBytes bounds what is read from --key-file: a seed file is 64
// hex characters and a newline.
const maxSeedFileBytes = 1 << 10

// defaultRoomTokenTTL matches the control plane's default for
// token.mint-room.
const defaultRoomTokenTTL = time.Hour

type roomTokenFlags struct {
	room, peer, keyFile, kid string
	caps                     []string
	ttl                      time.Duration
}

func newTokenRoom() *cobra.Command {
	var f roomTokenFlags
	cmd := &cobra.Command{
		Use:   "room",
		Short: "Mint a room token offline from a room key seed (prints the hello.token JSON)",
		Long: "Sign a room token (the hello.token object) with a room's own key, without contacting the cluster.\n" +
			"The room must trust the key (nodalmerge admin rooms set-key) and be locked to its own keys\n" +
			"(nodalmerge admin rooms lock ROOM --mode own-keys) for the token to be required; in an open room\n" +
			"a token from the room's keys still grants its capability classes.\n\n" +
			"--key-file holds the key's 32-byte Ed25519 seed as 64 hex characters (make one with\n" +
			"'nodalmerge token room-key'); keep it 0600. Only the token JSON goes to stdout; the token id\n" +
			"(for revocation) and expiry go to stderr. Caps are capability classes (room.admin, policy.admin, ...)\n" +
			"and path grants read:<glob> / write:<glob>.\n\n" +
			"--kid pins the token to one of the room's keys; without it every key the room trusts is tried.\n" +
			"A key registered without a kid gets the kid 'token room-key' printed for it.",
		Example: "  nodalmerge token room --room lobby --peer-pubkey $PEER --caps room.admin,read:world/** \\\n" +
			"      --ttl 1h --key-file lobby.seed\n" +
			"  nodalmerge token room --room game-1 --peer-pubkey $PEER --caps write:intent/** --key-file game.seed --kid rk-1a2b3c4d5e6f",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTokenRoom(cmd, f, time.Now())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.room, "room", "", "the room the token admits to")
	fl.StringVar(&f.peer, "peer-pubkey", "", "hex of the peer's 32-byte Ed25519 public key (its hello.pubkey)")
	fl.StringSliceVar(&f.caps, "caps", nil, "capability classes and read:/write: path grants, comma separated")
	fl.DurationVar(&f.ttl, "ttl", defaultRoomTokenTTL, "lifetime of the token")
	fl.StringVar(&f.keyFile, "key-file", "", "file holding the room key's seed as 64 hex characters")
	fl.StringVar(&f.kid, "kid", "", "key id to put in the token (optional)")
	for _, name := range []string{"room", "peer-pubkey", "key-file"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}

func runTokenRoom(cmd *cobra.Command, f roomTokenFlags, now time.Time) error {
	if !roomname.Valid(f.room) {
		return fmt.Errorf("--room %q: %s", f.room, roomname.Help)
	}
	peer, err := parsePubkey(f.peer)
	if err != nil {
		return fmt.Errorf("--peer-pubkey: %w", err)
	}
	if err := checkRoomCaps(f.caps); err != nil {
		return fmt.Errorf("--caps: %w", err)
	}
	if f.ttl <= 0 {
		return fmt.Errorf("--ttl %s: must be positive", f.ttl)
	}
	if len(f.kid) > 128 {
		return errors.New("--kid: at most 128 bytes")
	}
	priv, err := readSeedFile(f.keyFile, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer clear(priv)

	expiry := now.Add(f.ttl).Unix()
	tok := token.SignRoom(priv, f.room, peer, uint64(expiry), f.caps, f.kid)
	out, err := json.Marshal(tok)
	if err != nil {
		return fmt.Errorf("encode the token: %w", err)
	}
	fmt.Fprintln(cmd.OutOrStdout(), string(out))
	fmt.Fprintf(cmd.ErrOrStderr(), "room token %s for room %s, key %s, expires %s\n",
		tok.ID(), f.room, keyring.RoomKeyID(priv.Public().(ed25519.PublicKey)), time.Unix(expiry, 0).Local().Format(time.RFC3339))
	return nil
}

// checkRoomCaps refuses caps the cluster would refuse at mint time and
// that could never verify: token.ValidateRoomCaps, duplicates, and path
// grants whose glob does not compile. Errors name the cap's index.
func checkRoomCaps(caps []string) error {
	if err := token.ValidateRoomCaps(caps); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "token: "))
	}
	seen := make(map[string]bool, len(caps))
	for i, c := range caps {
		if seen[c] {
			return fmt.Errorf("cap %d (%s) is listed twice", i, c)
		}
		seen[c] = true
		for _, prefix := range []string{token.ReadGrantPrefix, token.WriteGrantPrefix} {
			if glob, ok := strings.CutPrefix(c, prefix); ok {
				if _, err := pathglob.Compile(glob); err != nil {
					return fmt.Errorf("cap %d (%s): %w", i, c, err)
				}
			}
		}
	}
	return nil
}

// parsePubkey decodes 64 hex characters into an Ed25519 public key.
func parsePubkey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q is not 64 hex characters (a 32-byte Ed25519 public key)", s)
	}
	return b, nil
}

// readSeedFile reads a room key seed file (64 hex characters, one line)
// and warns on warn when group or others may read it. Errors never quote
// the file's contents.
func readSeedFile(path string, warn io.Writer) (ed25519.PrivateKey, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("--key-file %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		fmt.Fprintf(warn, "warning: --key-file %s is readable by others (mode %04o); run chmod 600 %s\n", path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(fh, maxSeedFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--key-file %s: %w", path, err)
	}
	defer clear(raw)
	const want = "want the room key's 32-byte Ed25519 seed as 64 hex characters on one line"
	if len(raw) > maxSeedFileBytes {
		return nil, fmt.Errorf("--key-file %s: file is too large; %s", path, want)
	}
	text := strings.TrimRight(string(raw), " \t\r\n")
	seed, err := hex.DecodeString(text)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("--key-file %s: %s", path, want)
	}
	defer clear(seed)
	return ed25519.NewKeyFromSeed(seed), nil
}

func newTokenRoomKey() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "room-key",
		Short: "Generate a room key: write its seed to a new 0600 file, print its public key and kid",
		Long: "Generate an Ed25519 room key. The seed (the secret) is written to --out, which must not exist,\n" +
			"with mode 0600; stdout gets two lines, 'public_key <hex>' and 'kid <kid>'. Register the public\n" +
			"key with the room, then mint tokens offline with 'nodalmerge token room --key-file'.",
		Example: "  nodalmerge token room-key --out lobby.seed\n" +
			"  nodalmerge admin rooms set-key lobby --pubkey $(nodalmerge token room-key --out lobby.seed | awk '/^public_key/ {print $2}')",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTokenRoomKey(cmd, out)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to create for the seed (refused if it exists)")
	cmd.MarkFlagRequired("out")
	return cmd
}

func runTokenRoomKey(cmd *cobra.Command, out string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate a room key: %w", err)
	}
	defer clear(priv)
	line := []byte(hex.EncodeToString(priv.Seed()) + "\n")
	defer clear(line)
	if err := writeSecretFile(out, line, "the seed"); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "public_key %s\nkid %s\n", hex.EncodeToString(pub), keyring.RoomKeyID(pub))
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote the seed to %s (0600); register the key with: nodalmerge admin rooms set-key ROOM --pubkey %s\n",
		out, hex.EncodeToString(pub))
	return nil
}
