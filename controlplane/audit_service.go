package controlplane

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

const (
	defaultAuditList = 100
	maxAuditList     = 1000
)

// auditService answers this node's recent audit events (audit.list). It is
// node-local: each node keeps what it decided.
type auditService struct {
	adminv1.UnimplementedAuditServiceServer
	s *Server
}

func (as *auditService) ListEvents(_ context.Context, req *adminv1.ListEventsRequest) (*adminv1.ListEventsResponse, error) {
	const command = "audit.list"
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = defaultAuditList
	case limit > maxAuditList:
		return nil, invalidArg(command, "limit must be at most %d (page with since)", maxAuditList)
	}
	since, err := checkTimestamp(command, "since", req.GetSince())
	if err != nil {
		return nil, err
	}
	events := as.s.events.list(since, limit)
	out := make([]*adminv1.AuditEvent, 0, len(events))
	for _, e := range events {
		out = append(out, &adminv1.AuditEvent{
			Time:      timestamppb.New(e.Time),
			Node:      e.Node,
			Actor:     e.Actor,
			Transport: e.Transport,
			Command:   e.Command,
			Requires:  e.Requires,
			Room:      e.Room,
			Decision:  e.Decision,
			Reason:    e.Reason,
			RaftIndex: e.RaftIndex,
			KeyIds:    e.KeyIDs,
		})
	}
	return &adminv1.ListEventsResponse{Events: out}, nil
}
