package loadgen

import (
	"fmt"
	"maps"
	"slices"

	"github.com/nodalmerge/nodalmerge-go/internal/grpccode"

	"google.golang.org/grpc/status"
)

// adminErrors counts one client's failed calls by gRPC code and keeps the
// first message of each code, so a report says both how many calls failed
// and why without listing thousands of lines. Each client owns one (no
// locking); they are merged after the run.
type adminErrors struct {
	counts map[string]uint64
	first  map[string]string
}

func newAdminErrors() *adminErrors {
	return &adminErrors{counts: map[string]uint64{}, first: map[string]string{}}
}

// add counts err under its code. Server messages name commands,
// capabilities and rooms, never the caller's token, so they are safe to
// report.
func (e *adminErrors) add(err error) {
	st, _ := status.FromError(err) // a non-status error is UNKNOWN
	code := grpccode.Name(st.Code())
	e.counts[code]++
	if _, ok := e.first[code]; !ok {
		e.first[code] = st.Message()
	}
}

func (e *adminErrors) merge(o *adminErrors) {
	for code, n := range o.counts {
		e.counts[code] += n
		if _, ok := e.first[code]; !ok {
			e.first[code] = o.first[code]
		}
	}
}

// list is one line per code, sorted, for Errors in the report.
func (e *adminErrors) list() []string {
	out := make([]string, 0, len(e.counts))
	for _, code := range slices.Sorted(maps.Keys(e.counts)) {
		out = append(out, fmt.Sprintf("%d× %s: %s", e.counts[code], code, e.first[code]))
	}
	return out
}
