package controlplane

import (
	"container/list"
	"sync"
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
// bytes, least recently used evicted first. Projections in it are never
// changed after they are built, so readers share them without copying.
// The zero value is an empty cache with the default bounds.
type projectionCache struct {
	mu       sync.Mutex
	maxCount int // 0: maxCachedProjections
	maxBytes int // 0: maxCachedProjectionBytes
	bytes    int
	order    *list.List // of *projection, most recently used first
	byKey    map[projectionKey]*list.Element
}

// init makes the zero value usable; callers hold mu.
func (c *projectionCache) init() {
	if c.byKey == nil {
		c.byKey = make(map[projectionKey]*list.Element)
		c.order = list.New()
	}
	if c.maxCount <= 0 {
		c.maxCount = maxCachedProjections
	}
	if c.maxBytes <= 0 {
		c.maxBytes = maxCachedProjectionBytes
	}
}

// get answers the projection and marks it used.
func (c *projectionCache) get(k projectionKey) (*projection, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	el, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*projection), true
}

// room answers the room's projections by name without marking them used:
// listing is not reading.
func (c *projectionCache) room(room string) map[string]*projection {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	out := make(map[string]*projection)
	for k, el := range c.byKey {
		if k.room == room {
			out[k.name] = el.Value.(*projection)
		}
	}
	return out
}

// put stores p, replacing the build of the same projection, and evicts
// the least recently used until the bounds hold again.
func (c *projectionCache) put(p *projection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	k := p.key()
	if el, ok := c.byKey[k]; ok {
		c.remove(el)
	}
	c.byKey[k] = c.order.PushFront(p)
	c.bytes += p.size
	for c.order.Len() > 1 && (c.order.Len() > c.maxCount || c.bytes > c.maxBytes) {
		c.remove(c.order.Back())
	}
}

// drop removes the projection and reports whether it was cached.
func (c *projectionCache) drop(k projectionKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	el, ok := c.byKey[k]
	if ok {
		c.remove(el)
	}
	return ok
}

// remove unlinks el; callers hold mu.
func (c *projectionCache) remove(el *list.Element) {
	p := c.order.Remove(el).(*projection)
	delete(c.byKey, p.key())
	c.bytes -= p.size
}

// len answers how many projections are cached and their bytes.
func (c *projectionCache) len() (count, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	return c.order.Len(), c.bytes
}
