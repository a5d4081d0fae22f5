package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// mintedRoomToken is a room token minted by TokenService: its hello.token
// form, its wire fields and its id.
type mintedRoomToken struct {
	raw json.RawMessage
	tok token.RoomToken
	id  string
}

// mintRoomToken asks node i for a room token signed by the cluster
// keyring, with the bootstrap token.
func (sc *secCluster) mintRoomToken(i int, room string, peer ed25519.PublicKey, caps []string, ttl time.Duration) mintedRoomToken {
	sc.t.Helper()
	resp := must(sc.t, "MintRoomToken", func(ctx context.Context) (*adminv1.MintRoomTokenResponse, error) {
		return sc.tokens(i).MintRoomToken(ctx, &adminv1.MintRoomTokenRequest{
			Room: room, PeerPubkey: hex.EncodeToString(peer), Caps: caps, Ttl: durationpb.New(ttl),
		})
	})
	w := resp.GetToken()
	tok := token.RoomToken{PeerPubkey: w.GetPeerPubkey(), Expiry: w.GetExpiry(), Caps: w.GetCaps(), Sig: w.GetSig(), Kid: w.GetKid()}
	if tok.Caps == nil {
		tok.Caps = []string{}
	}
	raw, err := json.Marshal(tok)
	if err != nil {
		sc.t.Fatal(err)
	}
	if resp.GetTokenId() != tok.ID() {
		sc.t.Errorf("MintRoomToken answered token_id %q; the SPEC's id of its signature is %q", resp.GetTokenId(), tok.ID())
	}
	return mintedRoomToken{raw: raw, tok: tok, id: resp.GetTokenId()}
}

// mintOperator asks node 0 for an operator token with caps (all rooms),
// with the bootstrap token; it answers the JWT and its id.
func (sc *secCluster) mintOperator(subject string, caps []string, ttl time.Duration) (jwt, id string) {
	sc.t.Helper()
	resp := must(sc.t, "MintOperatorToken", func(ctx context.Context) (*adminv1.MintOperatorTokenResponse, error) {
		return sc.tokens(0).MintOperatorToken(ctx, &adminv1.MintOperatorTokenRequest{Subject: subject, Caps: caps, Ttl: durationpb.New(ttl)})
	})
	return resp.GetToken(), resp.GetTokenId()
}

// lockOwnKeys gives room its own key pub and locks it to its own keys,
// then waits until every node enforces the lock. It answers the key id.
func (sc *secCluster) lockOwnKeys(i int, room string, pub ed25519.PublicKey) string {
	sc.t.Helper()
	set := must(sc.t, "SetRoomKey", func(ctx context.Context) (*adminv1.SetRoomKeyResponse, error) {
		return sc.rooms(i).SetRoomKey(ctx, &adminv1.SetRoomKeyRequest{Room: room, Pubkey: hex.EncodeToString(pub)})
	})
	sc.lock(i, room, "own-keys")
	return set.GetKid()
}

// lock locks room in mode through node i and waits until every node
// enforces it.
func (sc *secCluster) lock(i int, room, mode string) {
	sc.t.Helper()
	must(sc.t, "LockRoom "+mode, func(ctx context.Context) (*adminv1.LockRoomResponse, error) {
		return sc.rooms(i).LockRoom(ctx, &adminv1.LockRoomRequest{Room: room, Mode: mode})
	})
	sc.waitRoomMode(room, mode)
}

// revoke sends a revocation through node i and answers when it returned.
func (sc *secCluster) revoke(i int, req *adminv1.RevokeRequest) (time.Time, uint64) {
	sc.t.Helper()
	resp := must(sc.t, "Revoke", func(ctx context.Context) (*adminv1.RevokeResponse, error) {
		return sc.tokens(i).Revoke(ctx, req)
	})
	return time.Now(), resp.GetRaftIndex()
}

// scrape answers node i's /metrics text.
func (sc *secCluster) scrape(i int) string {
	sc.t.Helper()
	body, code, err := httpGet("http://"+sc.metrics[i]+"/metrics", nil)
	if err != nil || code != http.StatusOK {
		sc.t.Fatalf("scrape %s: HTTP %d, %v", sc.nodes[i].id, code, err)
	}
	return body
}

// metricValue answers the value of the sample whose name and labels are
// exactly series (e.g. `nodalmerge_rooms_total` or
// `nodalmerge_auth_failures_total{reason="token has expired"}`).
func metricValue(text, series string) (float64, bool) {
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		return v, err == nil
	}
	return 0, false
}

// httpGet fetches url with a bounded client (tlsCfg for https) and
// answers the body and status.
func httpGet(url string, tlsCfg *tls.Config) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: tlsCfg}}
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return string(b), resp.StatusCode, err
}
