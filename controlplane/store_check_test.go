package controlplane

import "github.com/nodalmerge/nodalmerge-go/raftstore"

// The real store is what production passes as Cluster.
var _ Cluster = (*raftstore.Store)(nil)
