package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// secret is one value that must never be seen outside its holder.
type secret struct {
	kind  string // what it is, for the report
	value string
	// fold: hex, found whatever its case.
	fold bool
}

// secretSet collects the secrets a scenario handles.
type secretSet struct{ list []secret }

// minLen keeps the search meaningful: shorter strings would match by
// chance (a short last line of a PEM body, say).
const minSecretLen = 16

func (s *secretSet) add(kind, value string, fold bool) {
	if len(value) < minSecretLen {
		return
	}
	if fold {
		value = strings.ToLower(value)
	}
	s.list = append(s.list, secret{kind: kind, value: value, fold: fold})
}

// roomToken adds a room token's signature (hex and base64) and its JSON.
func (s *secretSet) roomToken(raw json.RawMessage, sig string) {
	s.add("room token signature (hex)", sig, true)
	if b, err := hex.DecodeString(sig); err == nil {
		s.add("room token signature (base64)", base64.StdEncoding.EncodeToString(b), false)
		s.add("room token signature (base64url)", base64.RawURLEncoding.EncodeToString(b), false)
	}
	s.add("room token JSON", string(raw), false)
}

// jwt adds an operator token and its signature segment.
func (s *secretSet) jwt(kind, tok string) {
	s.add(kind, tok, false)
	if i := strings.LastIndexByte(tok, '.'); i >= 0 {
		s.add(kind+" signature segment", tok[i+1:], false)
	}
}

// seed adds a room key's seed and private key in hex and base64.
func (s *secretSet) seed(priv ed25519.PrivateKey) {
	for what, b := range map[string][]byte{"room key seed": priv.Seed(), "room private key": priv} {
		s.add(what+" (hex)", hex.EncodeToString(b), true)
		s.add(what+" (base64)", base64.StdEncoding.EncodeToString(b), false)
		s.add(what+" (base64url)", base64.RawURLEncoding.EncodeToString(b), false)
	}
}

// pemKey adds a PEM private key's body, whole and line by line.
func (s *secretSet) pemKey(t *testing.T, kind, path string) {
	t.Helper()
	block, _ := pem.Decode([]byte(readFile(t, path)))
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	body := base64.StdEncoding.EncodeToString(block.Bytes)
	s.add(kind+" (PEM body)", body, false)
	for len(body) > 0 {
		n := min(64, len(body))
		s.add(kind+" (PEM line)", body[:n], false)
		body = body[n:]
	}
}

// corpus is one place searched.
type corpus struct {
	where string
	text  string
}

// TestSecretsNeverLeak runs a security scenario on a cluster logging at
// debug level: locked rooms with their own keys and the cluster's, tokens
// good and bad (expired, tampered, for another peer, unknown kid,
// malformed), denied commands on both doors, operator tokens minted,
// tampered and refused, a token minted over the WebSocket, revocations,
// key rotations and an expiry. Then every node's log, audit trail and
// metrics, and every error the clients saw, are searched for every secret
// handled: none may appear. Token ids do appear, which shows the search
// looks where identifiers are written.
func TestSecretsNeverLeak(t *testing.T) {
	sc := startSecCluster(t, secOptions{flags: []string{"--log-level", "debug"}})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var sec secretSet
	var seen []string // every error string a client saw
	var ids []string  // token ids that the logs should carry
	sec.jwt("bootstrap operator token", sc.token)
	for _, nd := range sc.nodes {
		sec.pemKey(t, "node TLS key of "+nd.id, filepath.Join(nd.certs, "node-key.pem"))
	}
	sec.pemKey(t, "operator TLS key", filepath.Join(sc.dir, "ops", "operator-key.pem"))

	// Own-keys room: a key, good and bad tokens, a rotation.
	const own, clus = "e2e-secret-own", "e2e-secret-cluster"
	rkPub, rk := newKey(t)
	sec.seed(rk)
	kid := sc.lockOwnKeys(0, own, rkPub)
	later := time.Now().Add(10 * time.Minute)
	pub, key := newKey(t)
	otherPub, _ := newKey(t)
	good, goodTok := signToken(t, rk, own, pub, later, []string{"room.admin"}, kid)
	sec.roomToken(good, goodTok.Sig)
	expired, expiredTok := signToken(t, rk, own, pub, time.Now().Add(-time.Minute), nil, kid)
	sec.roomToken(expired, expiredTok.Sig)
	forOther, forOtherTok := signToken(t, rk, own, otherPub, later, nil, kid)
	sec.roomToken(forOther, forOtherTok.Sig)
	unknown, unknownTok := signToken(t, rk, own, pub, later, nil, "rk-000000000000")
	sec.roomToken(unknown, unknownTok.Sig)
	tampered := goodTok
	tampered.Sig = flipHex(tampered.Sig)
	tamperedRaw := mustJSON(t, tampered)
	sec.roomToken(tamperedRaw, tampered.Sig)
	malformed := json.RawMessage(strings.Replace(string(good), goodTok.Sig, "zz"+goodTok.Sig[2:], 1))
	sec.add("malformed room token JSON", string(malformed), false)
	for i := range sc.nodes {
		for _, tc := range []struct {
			name, reason string
			tok          json.RawMessage
		}{
			{"expired", token.ReasonExpired, expired},
			{"wrong peer", token.ReasonPeerMismatch, forOther},
			{"unknown kid", token.ReasonUnknownKey, unknown},
			{"tampered", token.ReasonBadSignature, tamperedRaw},
			{"malformed", token.MalformedField(token.FieldSig), malformed},
		} {
			seen = append(seen, sc.expectRefused(ctx, i, own, tc.name, key, tc.tok, tc.reason))
		}
	}
	admin := sc.mustJoin(ctx, 1, own, "room-admin", key, good)
	// A WebSocket command that fails after the capability check, and one
	// denied for want of a capability.
	for k, frame := range []map[string]any{
		{"type": "set-room-key", "pubkey": "not-a-key"},
		{"type": "set-policy", "default": "deny"},
		{"type": "token.mint-room", "peer_pubkey": hex.EncodeToString(pub)},
	} {
		m, err := admin.reply(ctx, frame, fmt.Sprintf("q%d", k))
		if err != nil {
			t.Fatal(err)
		}
		if e, err := m.AsError(); err == nil {
			seen = append(seen, e.Msg)
		}
	}
	rk2Pub, rk2 := newKey(t)
	sec.seed(rk2)
	must(t, "RotateRoomKey", func(ctx context.Context) (*adminv1.RotateRoomKeyResponse, error) {
		return sc.rooms(2).RotateRoomKey(ctx, &adminv1.RotateRoomKeyRequest{Room: own, Pubkey: hex.EncodeToString(rk2Pub), Grace: durationpb.New(time.Hour)})
	})

	// Cluster room: minted tokens, a token minted over the WebSocket, a
	// revocation, an expiry, a key rotation.
	sc.lock(1, clus, "cluster")
	minter := sc.mintRoomToken(0, clus, pub, []string{"token.mint"}, 10*time.Minute)
	sec.roomToken(minter.raw, minter.tok.Sig)
	ids = append(ids, minter.id)
	ms := sc.mustJoin(ctx, 2, clus, "minter", key, minter.raw)
	m, err := ms.reply(ctx, map[string]any{"type": "token.mint-room", "peer_pubkey": hex.EncodeToString(otherPub), "ttl": "600s"}, "mint")
	if err != nil {
		t.Fatal(err)
	}
	// The result is protojson (expiry is a string there), so only the
	// fields needed are decoded.
	var wsMinted struct {
		Token   json.RawMessage `json:"token"`
		TokenID string          `json:"token_id"`
	}
	decode(t, m.Raw, &wsMinted)
	var wsSig struct {
		Sig string `json:"sig"`
	}
	if json.Unmarshal(wsMinted.Token, &wsSig) != nil || wsSig.Sig == "" {
		t.Errorf("token.mint-room over the WebSocket answered a %q frame, want a token", m.Type)
	} else {
		sec.roomToken(wsMinted.Token, wsSig.Sig)
		ids = append(ids, wsMinted.TokenID)
	}
	victimPub, victimKey := newKey(t)
	victim := sc.mintRoomToken(1, clus, victimPub, nil, 10*time.Minute)
	sec.roomToken(victim.raw, victim.tok.Sig)
	ids = append(ids, victim.id)
	vs := sc.joinEverywhere(ctx, clus, "victim", victimKey, victim.raw)
	start := time.Now()
	done, _ := sc.revoke(0, &adminv1.RevokeRequest{TokenId: victim.id, Room: clus})
	sc.expectRevoked(ctx, "secrets scenario revoke", vs, start, done)
	seen = append(seen, sc.expectRefused(ctx, 2, clus, "revoked", victimKey, victim.raw, token.ReasonRevoked))
	shortPub, shortKey := newKey(t)
	short := sc.mintRoomToken(2, clus, shortPub, nil, 2*time.Second)
	sec.roomToken(short.raw, short.tok.Sig)
	ss := sc.mustJoin(ctx, 0, clus, "short", shortKey, short.raw)
	if code, text, _, err := ss.closed(ctx); err != nil || code != closeTokenExpired {
		t.Errorf("short token session ended with %d %q (%v), want %d", code, text, err, closeTokenExpired)
	} else {
		seen = append(seen, text)
	}
	seen = append(seen, sc.expectRefused(ctx, 0, clus, "expired minted", shortKey, short.raw, token.ReasonExpired))
	must(t, "RotateKey", func(ctx context.Context) (*adminv1.RotateKeyResponse, error) {
		return sc.keys(2).RotateKey(ctx, &adminv1.RotateKeyRequest{Purpose: "room-token", Grace: durationpb.New(time.Hour)})
	})

	// Operator tokens: least privilege, denied, tampered, revoked.
	reader, readerID := sc.mintOperator("secret-reader", []string{"cluster.read"}, 10*time.Minute)
	sec.jwt("operator token", reader)
	ids = append(ids, readerID)
	rc := sc.adminConn(1, reader)
	_, err = adminv1.NewKeyServiceClient(rc).RotateKey(ctx, &adminv1.RotateKeyRequest{Purpose: "operator"})
	seen = append(seen, grpcErrText(err))
	tamperedJWT := reader[:len(reader)-4] + flipB64(reader[len(reader)-4:])
	sec.jwt("tampered operator token", tamperedJWT)
	_, err = adminv1.NewClusterServiceClient(sc.adminConn(2, tamperedJWT)).GetStatus(ctx, &adminv1.GetStatusRequest{})
	seen = append(seen, grpcErrText(err))
	sc.revoke(2, &adminv1.RevokeRequest{TokenId: readerID})
	_, err = rpc(func(ctx context.Context) (*adminv1.GetStatusResponse, error) {
		return adminv1.NewClusterServiceClient(rc).GetStatus(ctx, &adminv1.GetStatusRequest{})
	})
	seen = append(seen, grpcErrText(err))
	must(t, "RotateKey operator", func(ctx context.Context) (*adminv1.RotateKeyResponse, error) {
		return sc.keys(0).RotateKey(ctx, &adminv1.RotateKeyRequest{Purpose: "operator", Grace: durationpb.New(time.Hour)})
	})
	ms.alive(ctx, t)

	// Collect everything observable and search it.
	var where []corpus
	var logBytes, metricBytes, events int
	for i, nd := range sc.nodes {
		log := sc.stderr(i)
		logBytes += len(log)
		where = append(where, corpus{nd.id + " stderr", log})
		evs := sc.auditEvents(i)
		events += len(evs)
		var b strings.Builder
		for _, ev := range evs {
			j, err := protojson.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(j)
			b.WriteByte('\n')
		}
		where = append(where, corpus{nd.id + " audit", b.String()})
		mt := sc.scrape(i)
		metricBytes += len(mt)
		where = append(where, corpus{nd.id + " metrics", mt})
	}
	seen = slices.DeleteFunc(seen, func(s string) bool { return s == "" })
	where = append(where, corpus{"client errors", strings.Join(seen, "\n")})

	kinds := map[string]int{}
	for _, s := range sec.list {
		kinds[s.kind]++
		for _, c := range where {
			text := c.text
			if s.fold {
				text = strings.ToLower(text)
			}
			if strings.Contains(text, s.value) {
				t.Errorf("LEAK: a %s appears in %s", s.kind, c.where)
			}
		}
	}
	t.Logf("searched %d bytes of stderr, %d audit events, %d bytes of metrics and %d client error strings (in %d places) for %d secrets of %d kinds",
		logBytes, events, metricBytes, len(seen), len(where), len(sec.list), len(kinds))
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		t.Logf("  %3d × %s", kinds[k], k)
	}

	// Positive control: identifiers are logged, so the search looked
	// where credentials would have gone.
	if logBytes == 0 || events == 0 || len(seen) < 10 {
		t.Errorf("too little to search: %d log bytes, %d audit events, %d client errors", logBytes, events, len(seen))
	}
	all := strings.Join(sc.allStderr(), "\n")
	for _, id := range ids {
		if !strings.Contains(all, id) {
			t.Errorf("token id %s appears in no node's log; logs should name tokens by id", id)
		}
	}
}

// grpcErrText is the status message a gRPC client sees ("" for none).
func grpcErrText(err error) string {
	if err == nil {
		return ""
	}
	return status.Convert(err).Message()
}

// flipB64 changes the first base64url character of s to another one.
func flipB64(s string) string {
	c := byte('A')
	if s[0] == 'A' {
		c = 'B'
	}
	return string(c) + s[1:]
}
