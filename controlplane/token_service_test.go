package controlplane

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// allCaps are the capabilities of a bootstrap operator token: every SPEC
// class a token may hold.
var allCaps = []string{
	"archive.admin", "archive.read", "cluster.admin", "cluster.read", "policy.admin",
	"query.admin", "query.read", "room.admin", "tick.admin", "token.mint", "topology.admin",
}

// tokenClients dials the env as operator alice.
func tokenClients(t *testing.T, e *env) (adminv1.TokenServiceClient, adminv1.ClusterServiceClient) {
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	return adminv1.NewTokenServiceClient(conn), adminv1.NewClusterServiceClient(conn)
}

func TestMintOperatorTokenGrantsExactlyWhatWasAsked(t *testing.T) {
	e := newEnv(t, envOptions{})
	tokens, cluster := tokenClients(t, e)
	caller := e.mint(t, e.operatorClaims(allCaps...))

	resp, err := tokens.MintOperatorToken(bearer(callCtx(t), caller), &adminv1.MintOperatorTokenRequest{
		Subject: "ci-bot",
		Caps:    []string{"cluster.read", "room.admin"},
		Rooms:   []string{"team/*", "lobby"},
		Ttl:     durationpb.New(10 * time.Minute),
	})
	if err != nil {
		t.Fatalf("MintOperatorToken: %v", err)
	}
	got, err := token.VerifyOperator(resp.GetToken(), token.KeyringKeyFunc(e.cluster.keys, e.now), testClusterID, e.now)
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	wantExp := e.now.Add(10 * time.Minute)
	if got.Subject != "ci-bot" || !slices.Equal(got.Caps, []string{"cluster.read", "room.admin"}) ||
		!slices.Equal(got.Rooms, []string{"team/*", "lobby"}) || got.ClusterID != testClusterID {
		t.Errorf("claims = %+v", got)
	}
	if got.ID != resp.GetTokenId() || len(got.ID) != 32 {
		t.Errorf("jti %q, answered token_id %q", got.ID, resp.GetTokenId())
	}
	if !got.ExpiresAt.Equal(wantExp) || !resp.GetExpiresAt().AsTime().Equal(wantExp) || !got.IssuedAt.Equal(e.now) {
		t.Errorf("iat %v exp %v answered %v; want iat %v exp %v", got.IssuedAt, got.ExpiresAt, resp.GetExpiresAt().AsTime(), e.now, wantExp)
	}

	// The new token works for what it holds, and only for that.
	if _, err := cluster.GetStatus(bearer(callCtx(t), resp.GetToken()), &adminv1.GetStatusRequest{}); err != nil {
		t.Errorf("GetStatus with the minted cluster.read token: %v", err)
	}
	_, err = tokens.MintOperatorToken(bearer(callCtx(t), resp.GetToken()), &adminv1.MintOperatorTokenRequest{Subject: "x", Caps: []string{"cluster.read"}})
	wantDeny(t, err, "token.mint-operator", "cluster.admin")

	events := e.audit.take()
	if len(events) != 3 || events[0].Command != "token.mint-operator" || events[0].Decision != DecisionAllow ||
		events[0].Actor != "alice/tok-1" || events[2].Decision != DecisionDeny || events[2].Actor != "ci-bot/"+resp.GetTokenId() {
		t.Errorf("audit events = %+v", events)
	}
	logs := e.logs.String()
	if strings.Contains(logs, resp.GetToken()) || strings.Contains(logs, strings.Split(resp.GetToken(), ".")[2]) {
		t.Error("logs contain the minted token or its signature")
	}
	if !strings.Contains(logs, `"token_id":"`+resp.GetTokenId()+`"`) {
		t.Errorf("logs lack the minted token id:\n%s", logs)
	}
}

func TestMintOperatorTokenExpiry(t *testing.T) {
	e := newEnv(t, envOptions{})
	tokens, _ := tokenClients(t, e)
	short := e.operatorClaims("cluster.admin", "cluster.read")
	short.ExpiresAt = e.now.Add(30 * time.Minute)
	long := e.operatorClaims("cluster.admin", "cluster.read")
	long.ExpiresAt = e.now.Add(48 * time.Hour)

	tests := []struct {
		name   string
		caller token.OperatorClaims
		ttl    *durationpb.Duration
		want   time.Time
	}{
		{"default is one hour", long, nil, e.now.Add(time.Hour)},
		{"24h is the maximum", long, durationpb.New(24 * time.Hour), e.now.Add(24 * time.Hour)},
		{"never outlives the caller (default ttl)", short, nil, short.ExpiresAt},
		{"never outlives the caller (asked ttl)", short, durationpb.New(2 * time.Hour), short.ExpiresAt},
		{"sub-second part is dropped", long, durationpb.New(90*time.Second + 500*time.Millisecond), e.now.Add(90 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tokens.MintOperatorToken(bearer(callCtx(t), e.mint(t, tt.caller)),
				&adminv1.MintOperatorTokenRequest{Subject: "bob", Caps: []string{"cluster.read"}, Ttl: tt.ttl})
			if err != nil {
				t.Fatalf("MintOperatorToken: %v", err)
			}
			got, err := token.VerifyOperator(resp.GetToken(), token.KeyringKeyFunc(e.cluster.keys, e.now), testClusterID, e.now)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if !got.ExpiresAt.Equal(tt.want) || !resp.GetExpiresAt().AsTime().Equal(tt.want) {
				t.Errorf("exp %v, answered %v; want %v", got.ExpiresAt, resp.GetExpiresAt().AsTime(), tt.want)
			}
		})
	}
}

func TestMintOperatorTokenRefusesEscalationAndBadRequests(t *testing.T) {
	e := newEnv(t, envOptions{})
	tokens, _ := tokenClients(t, e)
	all := e.mint(t, e.operatorClaims(allCaps...))
	limitedClaims := e.operatorClaims("cluster.admin", "room.admin")
	limitedClaims.Rooms = []string{"team/*", "lobby"}
	limited := e.mint(t, limitedClaims)

	const p = "token.mint-operator: "
	tests := []struct {
		name   string
		caller string
		req    *adminv1.MintOperatorTokenRequest
		code   codes.Code
		msg    string
	}{
		{"cap not held", limited, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin", "cluster.read"}, Rooms: []string{"lobby"}},
			codes.PermissionDenied, p + "cannot grant cluster.read: the calling token does not hold it"},
		{"cap differs only in case", limited, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"Room.Admin"}, Rooms: []string{"lobby"}},
			codes.PermissionDenied, p + "cannot grant Room.Admin: the calling token does not hold it"},
		{"cluster.node", all, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"cluster.node"}},
			codes.InvalidArgument, p + "cannot grant cluster.node: it is held only by node certificates, never by tokens"},
		{"empty caps", all, &adminv1.MintOperatorTokenRequest{Subject: "b"},
			codes.InvalidArgument, p + "caps is empty: list the capabilities the token grants, e.g. cluster.read"},
		{"empty cap", all, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{""}},
			codes.InvalidArgument, p + "caps contains an empty string"},
		{"duplicate cap", all, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin", "room.admin"}},
			codes.InvalidArgument, p + `caps lists "room.admin" twice`},
		{"no subject", all, &adminv1.MintOperatorTokenRequest{Caps: []string{"room.admin"}},
			codes.InvalidArgument, p + "subject is required: name who the token is for"},
		{"long subject", all, &adminv1.MintOperatorTokenRequest{Subject: strings.Repeat("s", 129), Caps: []string{"room.admin"}},
			codes.InvalidArgument, p + "subject is 129 bytes; use at most 128"},
		{"all rooms from a limited caller", limited, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}},
			codes.PermissionDenied, p + "cannot grant all rooms: the calling token is limited to team/*, lobby; list rooms inside them"},
		{"room outside", limited, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Rooms: []string{"lobby", "other"}},
			codes.PermissionDenied, p + `cannot grant room "other": the calling token's rooms do not cover it`},
		{"room below a single-star glob", limited, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Rooms: []string{"team/a/b"}},
			codes.PermissionDenied, p + `cannot grant room "team/a/b": the calling token's rooms do not cover it`},
		{"wider glob", limited, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Rooms: []string{"team/**"}},
			codes.PermissionDenied, p + `cannot grant room "team/**": the calling token's rooms do not cover it`},
		{"new glob even if narrower", limited, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Rooms: []string{"team/a*"}},
			codes.PermissionDenied, p + `cannot grant room "team/a*": the calling token's rooms do not cover it`},
		{"empty room", all, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Rooms: []string{""}},
			codes.InvalidArgument, p + "rooms contains an empty string"},
		{"too many rooms", all, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Rooms: manyRooms(33)},
			codes.InvalidArgument, p + "rooms lists 33 entries; use at most 32"},
		{"zero ttl", all, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Ttl: durationpb.New(0)},
			codes.InvalidArgument, p + "ttl 0s is out of range: use 1s to 24h (or leave it unset for 1h)"},
		{"negative ttl", all, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Ttl: durationpb.New(-time.Minute)},
			codes.InvalidArgument, p + "ttl -1m0s is out of range: use 1s to 24h (or leave it unset for 1h)"},
		{"ttl over 24h", all, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Ttl: durationpb.New(25 * time.Hour)},
			codes.InvalidArgument, p + "ttl 25h0m0s is out of range: use 1s to 24h (or leave it unset for 1h)"},
		{"ttl under a second", all, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Ttl: durationpb.New(500 * time.Millisecond)},
			codes.InvalidArgument, p + "ttl 500ms is out of range: use 1s to 24h (or leave it unset for 1h)"},
		{"malformed ttl", all, &adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Ttl: &durationpb.Duration{Seconds: 5, Nanos: -1}},
			codes.InvalidArgument, p + "ttl is not a valid duration: seconds and nanos must be in range and have the same sign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tokens.MintOperatorToken(bearer(callCtx(t), tt.caller), tt.req)
			wantStatus(t, err, tt.code, tt.msg)
		})
	}
}

func TestMintOperatorTokenWithinLimitedRooms(t *testing.T) {
	e := newEnv(t, envOptions{})
	tokens, _ := tokenClients(t, e)
	c := e.operatorClaims("cluster.admin", "room.admin")
	c.Rooms = []string{"team/*", "lobby"}
	caller := e.mint(t, c)

	for _, rooms := range [][]string{{"team/*"}, {"lobby"}, {"team/a", "lobby"}, {"team/*", "team/b"}} {
		resp, err := tokens.MintOperatorToken(bearer(callCtx(t), caller),
			&adminv1.MintOperatorTokenRequest{Subject: "b", Caps: []string{"room.admin"}, Rooms: rooms})
		if err != nil {
			t.Errorf("rooms %q: %v", rooms, err)
			continue
		}
		got, err := token.VerifyOperator(resp.GetToken(), token.KeyringKeyFunc(e.cluster.keys, e.now), testClusterID, e.now)
		if err != nil || !slices.Equal(got.Rooms, rooms) {
			t.Errorf("rooms %q: minted %+v, verify error %v", rooms, got, err)
		}
	}
}

func manyRooms(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "room-" + strings.Repeat("x", i)
	}
	return out
}
