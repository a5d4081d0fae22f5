package controlplane

import "github.com/nodalmerge/nodalmerge-go/keyring"

// KEKHolder is implemented by a Cluster whose node was started with a
// key-encryption key (--kek-file). The server then seals the seeds of the
// keys it generates (keys.rotate) before proposing them, and opens sealed
// seeds when it signs. It is an optional interface of the Cluster so that
// the node's one view of the keyring also says how to open it.
type KEKHolder interface {
	// KEK answers the node's key-encryption key; nil: none.
	KEK() *keyring.KEK
}

// kek answers this node's key-encryption key, nil when it has none.
func (s *Server) kek() *keyring.KEK {
	if h, ok := s.cluster.(KEKHolder); ok {
		return h.KEK()
	}
	return nil
}
