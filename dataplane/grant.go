package dataplane

import (
	"fmt"
	"strings"
	"time"

	"github.com/nodalmerge/nodalmerge-go/pathglob"
)

// Grant is what admission gives a session: what its room token allows.
// A session without a token (an open room) has the zero Grant: no
// capability class, no path limit, no expiry.
type Grant struct {
	// Caps are the token's capability classes (SPEC section 4); they gate
	// the session's control commands.
	Caps []string
	// Read and Write are the token's path grants (the globs after
	// "read:" / "write:"). nil means no limit of that kind; an empty,
	// non-nil list allows nothing.
	Read, Write []string
	// Expiry closes the session with 4002 when reached; zero: never.
	Expiry time.Time
	// TokenID and KeyID name the token and the key that verified it (for
	// revocation and key retirement); empty without a token.
	TokenID, KeyID string
}

// sessionGrant is a Grant compiled for the hot paths.
type sessionGrant struct {
	Grant
	read, write []pathglob.Pattern
	// readKey identifies the read grants in subscription keys.
	readKey string
}

func compileGrant(g *Grant) (*sessionGrant, error) {
	sg := &sessionGrant{}
	if g == nil {
		return sg, nil
	}
	sg.Grant = *g
	if g.Read != nil {
		ps, err := pathglob.CompileAll(g.Read)
		if err != nil {
			return nil, fmt.Errorf("read grant: %w", err)
		}
		sg.read, sg.readKey = ps, strings.Join(g.Read, "\x00")
		if sg.read == nil {
			sg.read = []pathglob.Pattern{}
		}
	}
	if g.Write != nil {
		ps, err := pathglob.CompileAll(g.Write)
		if err != nil {
			return nil, fmt.Errorf("write grant: %w", err)
		}
		sg.write = ps
		if sg.write == nil {
			sg.write = []pathglob.Pattern{}
		}
	}
	return sg, nil
}

// mayWrite reports whether the session's write grants cover path.
func (g *sessionGrant) mayWrite(path string) bool {
	return g.write == nil || pathglob.MatchAny(g.write, path)
}
