package controlplane

import (
	"context"
	"slices"
	"strings"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// Tick limits: at least 10 ms between ticks (SPEC), at most an hour; the
// intent prefix is a key-path prefix.
const (
	minTickIntervalMs   = 10
	maxTickIntervalMs   = 3_600_000
	defaultIntentPrefix = "intent/"
	maxIntentPrefix     = 128
)

// tickService manages replicated tick schedules. The leader runs every
// room's tick, so ListTicks names the current leader as each runner.
type tickService struct {
	adminv1.UnimplementedTickServiceServer
	s *Server
}

func (ts *tickService) StartTick(ctx context.Context, req *adminv1.StartTickRequest) (*adminv1.StartTickResponse, error) {
	const command = "start-tick"
	if err := checkRoom(command, req.GetRoom()); err != nil {
		return nil, err
	}
	if iv := req.GetIntervalMs(); iv < minTickIntervalMs || iv > maxTickIntervalMs {
		return nil, invalidArg(command, "interval_ms must be %d to %d", minTickIntervalMs, maxTickIntervalMs)
	}
	prefix := req.GetIntentPrefix()
	if prefix == "" {
		prefix = defaultIntentPrefix
	}
	if len(prefix) > maxIntentPrefix || strings.ContainsAny(prefix, "*\n") || strings.HasPrefix(prefix, "/") {
		return nil, invalidArg(command, "intent_prefix must be a key-path prefix of at most %d bytes without * (default %q)", maxIntentPrefix, defaultIntentPrefix)
	}
	idx, err := ts.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_PutTick{PutTick: &statev1.PutTick{
		Tick: &statev1.TickSchedule{Room: req.GetRoom(), IntervalMs: req.GetIntervalMs(), IntentPrefix: prefix},
	}}})
	if err != nil {
		return nil, err
	}
	ts.s.logger.InfoContext(ctx, "tick started", "room", req.GetRoom(), "interval_ms", req.GetIntervalMs(), "index", idx)
	return &adminv1.StartTickResponse{RaftIndex: idx}, nil
}

func (ts *tickService) StopTick(ctx context.Context, req *adminv1.StopTickRequest) (*adminv1.StopTickResponse, error) {
	const command = "stop-tick"
	if err := checkRoom(command, req.GetRoom()); err != nil {
		return nil, err
	}
	idx, err := ts.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_DeleteTick{DeleteTick: &statev1.DeleteTick{Room: req.GetRoom()}}})
	if err != nil {
		return nil, err
	}
	ts.s.logger.InfoContext(ctx, "tick stopped", "room", req.GetRoom(), "index", idx)
	return &adminv1.StopTickResponse{RaftIndex: idx}, nil
}

func (ts *tickService) ListTicks(context.Context, *adminv1.ListTicksRequest) (*adminv1.ListTicksResponse, error) {
	runner := ts.s.cluster.Status().LeaderID
	ticks := ts.s.cluster.Ticks()
	slices.SortFunc(ticks, func(a, b *statev1.TickSchedule) int { return strings.Compare(a.GetRoom(), b.GetRoom()) })
	out := make([]*adminv1.TickInfo, 0, len(ticks))
	for _, t := range ticks {
		out = append(out, &adminv1.TickInfo{
			Room:         t.GetRoom(),
			IntervalMs:   t.GetIntervalMs(),
			IntentPrefix: t.GetIntentPrefix(),
			StartedAt:    timestampMs(t.GetStartedUnixMs()),
			Runner:       runner,
		})
	}
	return &adminv1.ListTicksResponse{Ticks: out}, nil
}
