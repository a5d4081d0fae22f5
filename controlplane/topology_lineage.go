package controlplane

import (
	"context"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// noLineage is what the lineage commands lack in this release: the
// replicated state machine has no parent/child relation between rooms nor
// promotion proposals to act on. The commands exist (registry, both
// doors, audit, metrics) so that their capability check is in force and
// tested now; they answer UNIMPLEMENTED after it.
const noLineage = "room lineage (child rooms and promotions) is not available in this release"

func (ts *topologyService) CreateChild(_ context.Context, req *adminv1.CreateChildRequest) (*adminv1.CreateChildResponse, error) {
	return nil, notInRelease("topology.create-child", req.GetRoom(), noLineage)
}

func (ts *topologyService) DescribeLineage(_ context.Context, req *adminv1.DescribeLineageRequest) (*adminv1.DescribeLineageResponse, error) {
	return nil, notInRelease("topology.describe-lineage", req.GetRoom(), noLineage)
}

func (ts *topologyService) ListChildren(_ context.Context, req *adminv1.ListChildrenRequest) (*adminv1.ListChildrenResponse, error) {
	return nil, notInRelease("topology.list-children", req.GetRoom(), noLineage)
}

func (ts *topologyService) ProposePromotion(_ context.Context, req *adminv1.ProposePromotionRequest) (*adminv1.ProposePromotionResponse, error) {
	return nil, notInRelease("topology.propose-promotion", req.GetRoom(), noLineage)
}

func (ts *topologyService) ValidatePromotion(_ context.Context, req *adminv1.ValidatePromotionRequest) (*adminv1.ValidatePromotionResponse, error) {
	return nil, notInRelease("topology.validate-promotion", req.GetRoom(), noLineage)
}

func (ts *topologyService) ApplyPromotion(_ context.Context, req *adminv1.ApplyPromotionRequest) (*adminv1.ApplyPromotionResponse, error) {
	return nil, notInRelease("topology.apply-promotion", req.GetRoom(), noLineage)
}
