package controlplane

import (
	"sync"

	"github.com/nodalmerge/nodalmerge-go/internal/lru"
)

// Bounds of a node's projection cache. Projections are node-local
// derived data: losing one costs a rebuild, never correctness, so the
// cache evicts the least recently used rather than refuse a build.
const (
	// maxCachedProjections bounds how many projections a node keeps (a
	// room may register 64 queries; a node serves many rooms).
	maxCachedProjections = 256
	// maxCachedProjectionBytes bounds the memory they hold together.
	maxCachedProjectionBytes = 256 << 20
	// maxProjectionBytes bounds one projection: a build over it is
	// refused (narrow the pattern), so one build always fits the cache.
	maxProjectionBytes = 64 << 20
)

// projectionKey names a projection on this node.
type projectionKey struct{ room, name string }

// projectionCache is this node's built projections, bounded in count and
// bytes, least recently used evicted first (the newest is always kept; a
// build over maxProjectionBytes is refused before it gets here).
// Projections in it are never changed after they are built, so readers
// share them without copying. The zero value is an empty cache with the
// default bounds.
type projectionCache struct {
	maxCount int // 0: maxCachedProjections
	maxBytes int // 0: maxCachedProjectionBytes

	once sync.Once
	lru  *lru.Cache[projectionKey, *projection]
}

// cache makes the zero value usable, with the bounds set at first use.
func (c *projectionCache) cache() *lru.Cache[projectionKey, *projection] {
	c.once.Do(func() {
		if c.maxCount <= 0 {
			c.maxCount = maxCachedProjections
		}
		if c.maxBytes <= 0 {
			c.maxBytes = maxCachedProjectionBytes
		}
		c.lru = lru.New[projectionKey](c.maxCount, c.maxBytes, func(p *projection) int { return p.size })
	})
	return c.lru
}

// get answers the projection and marks it used.
func (c *projectionCache) get(k projectionKey) (*projection, bool) { return c.cache().Get(k) }

// room answers the cached projections of room by name, without marking
// them used.
func (c *projectionCache) room(room string) map[string]*projection {
	out := make(map[string]*projection)
	c.cache().Each(func(k projectionKey, p *projection) {
		if k.room == room {
			out[k.name] = p
		}
	})
	return out
}

// put caches p (replacing an earlier build of the same projection) and
// evicts the least recently used ones beyond the bounds.
func (c *projectionCache) put(p *projection) { c.cache().Put(p.key(), p) }

// drop removes the projection and reports whether it was cached.
func (c *projectionCache) drop(k projectionKey) bool { return c.cache().Remove(k) }

// len answers how many projections are cached and their bytes.
func (c *projectionCache) len() (count, bytes int) { return c.cache().Len() }
