package controlplane

import (
	"context"
	"encoding/hex"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pathglob"
)

const setPolicyCommand = "set-policy"

// Policy default words.
const (
	policyAllow = "allow"
	policyDeny  = "deny"
)

// policyService manages rooms' write-policy timelines.
type policyService struct {
	adminv1.UnimplementedPolicyServiceServer
	s *Server
}

// SetPolicy appends an entry effective from the room's next Lamport: above
// everything the room holds (here, and on the node that forwarded the
// call) and above the previous entry, so a new policy never reaches back
// to judge history that was accepted under the old one.
func (ps *policyService) SetPolicy(ctx context.Context, req *adminv1.SetPolicyRequest) (*adminv1.SetPolicyResponse, error) {
	const command = setPolicyCommand
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	var allow bool
	switch req.GetDefault() {
	case policyAllow:
		allow = true
	case policyDeny:
	default:
		return nil, invalidArg(command, "default must be allow or deny")
	}
	rules, err := policyRules(command, req.GetRules())
	if err != nil {
		return nil, err
	}
	effective := forwardedLamport(ctx)
	if ps.s.dataPlane != nil {
		if maxLamport, _, _ := ps.s.dataPlane.RoomInfo(room); maxLamport > effective {
			effective = maxLamport
		}
	}
	effective++
	// Only the last entry matters; copying the room would cost a copy of
	// its whole timeline, which grows by one entry per call.
	if last, ok := ps.s.cluster.LastPolicyEntry(room); ok {
		effective = max(effective, last.GetEffectiveLamport()+1)
	}
	idx, err := ps.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_SetPolicy{SetPolicy: &statev1.SetPolicy{
		Room:  room,
		Entry: &statev1.PolicyEntry{EffectiveLamport: effective, DefaultAllow: allow, Rules: rules},
	}}})
	if err != nil {
		return nil, err
	}
	// The FSM raises an entry that collided with a concurrent one; answer
	// what the entry really got (the apply above ran on this node, the
	// leader, so the entry is in local state).
	if e, ok := ps.s.cluster.PolicyEntryAtIndex(room, idx); ok {
		effective = e.GetEffectiveLamport()
	}
	ps.s.logger.InfoContext(ctx, "policy set", "room", room, "default", req.GetDefault(),
		"rules", len(rules), "effective_lamport", effective, "index", idx)
	return &adminv1.SetPolicyResponse{EffectiveLamport: effective, RaftIndex: idx}, nil
}

// policyRules validates and converts the rules of a request.
func policyRules(command string, in []*adminv1.PolicyRule) ([]*statev1.PolicyRule, error) {
	if len(in) > maxRuleCount {
		return nil, invalidArg(command, "%d rules; use at most %d", len(in), maxRuleCount)
	}
	out := make([]*statev1.PolicyRule, 0, len(in))
	for i, r := range in {
		glob := r.GetPathGlob()
		if glob == "" || len(glob) > maxGlobBytes {
			return nil, invalidArg(command, "rule %d: path_glob must be 1 to %d bytes, e.g. world/**", i, maxGlobBytes)
		}
		if _, err := pathglob.Compile(glob); err != nil {
			return nil, invalidArg(command, "rule %d: path_glob is not a valid key-path glob (segments, * for one, ** for any number)", i)
		}
		if len(r.GetCanWrite()) > maxWritersOfRule {
			return nil, invalidArg(command, "rule %d: %d writers; use at most %d", i, len(r.GetCanWrite()), maxWritersOfRule)
		}
		rule := &statev1.PolicyRule{PathGlob: glob}
		for j, w := range r.GetCanWrite() {
			pub, err := decodePubkey(w)
			if err != nil {
				return nil, invalidArg(command, "rule %d: can_write %d %s", i, j, err)
			}
			rule.CanWrite = append(rule.CanWrite, pub)
		}
		out = append(out, rule)
	}
	return out, nil
}

// GetPolicy answers the room's latest entry as the current policy, and the
// timeline. A room without entries allows every write.
func (ps *policyService) GetPolicy(_ context.Context, req *adminv1.GetPolicyRequest) (*adminv1.GetPolicyResponse, error) {
	const command = "get-policy"
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	resp := &adminv1.GetPolicyResponse{Room: room, Default: policyAllow, Rules: []*adminv1.PolicyRule{}, Timeline: []*adminv1.PolicyEntry{}}
	// Converted straight from the stored record (copying only strings and
	// hex), instead of copying the whole room first and converting the copy.
	ps.s.cluster.ViewRoom(room, func(r *statev1.Room) {
		resp.Timeline = make([]*adminv1.PolicyEntry, 0, len(r.GetPolicy()))
		for _, e := range r.GetPolicy() {
			entry := &adminv1.PolicyEntry{
				EffectiveLamport: e.GetEffectiveLamport(),
				Default:          defaultWord(e.GetDefaultAllow()),
				Rules:            adminRules(e.GetRules()),
				SetAt:            timestampMs(e.GetSetUnixMs()),
			}
			resp.Timeline = append(resp.Timeline, entry)
			resp.Default, resp.Rules = entry.GetDefault(), entry.GetRules()
		}
	})
	return resp, nil
}

func defaultWord(allow bool) string {
	if allow {
		return policyAllow
	}
	return policyDeny
}

func adminRules(in []*statev1.PolicyRule) []*adminv1.PolicyRule {
	out := make([]*adminv1.PolicyRule, 0, len(in))
	for _, r := range in {
		rule := &adminv1.PolicyRule{PathGlob: r.GetPathGlob(), CanWrite: make([]string, 0, len(r.GetCanWrite()))}
		for _, w := range r.GetCanWrite() {
			rule.CanWrite = append(rule.CanWrite, hex.EncodeToString(w))
		}
		out = append(out, rule)
	}
	return out
}
