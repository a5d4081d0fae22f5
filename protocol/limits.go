package protocol

// Limits on client-supplied collections and strings. They bound the work and
// memory one frame can cost the server beyond its byte size (a 1 MiB frame
// of tiny strings would otherwise become a large number of allocations) and
// keep per-peer strings fit for logs and peer lists.
const (
	// MaxFrontierIDs bounds hello.frontier and request.known.
	MaxFrontierIDs = 4096
	// MaxPatterns bounds hello.subscribe and subscribe.patterns.
	MaxPatterns = 64
	// MaxPatternBytes bounds one subscription pattern.
	MaxPatternBytes = 256
	// MaxPeerFieldBytes bounds hello.peer_id and hello.peer_type.
	MaxPeerFieldBytes = 128
	// MaxCaps bounds the number of features in hello.caps.
	MaxCaps = 64
	// MaxCapNameBytes bounds one feature name in hello.caps.
	MaxCapNameBytes = 64
	// MaxTokenBytes bounds the raw hello.token object.
	MaxTokenBytes = 16 << 10
)
