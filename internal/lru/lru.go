// Package lru is a small least-recently-used map bounded by entry count
// and, optionally, by a total cost, safe for concurrent use. The control
// plane's verified-token cache and its projection cache share it.
package lru

import (
	"container/list"
	"sync"
)

// Cache maps K to V, most recently used first. Put evicts from the least
// recently used end while the cache holds more than maxCount entries or,
// with a cost bound, costs more than maxCost, but never its newest entry:
// a single entry over the cost bound is kept until something replaces it.
type Cache[K comparable, V any] struct {
	maxCount, maxCost int
	cost              func(V) int

	mu    sync.Mutex
	total int
	order *list.List // of *entry[K, V], most recently used first
	byKey map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

// New makes a cache of at most maxCount entries. With cost non-nil and
// maxCost > 0 the entries' total cost (cost of each value, computed once
// at Put) is bounded too.
func New[K comparable, V any](maxCount, maxCost int, cost func(V) int) *Cache[K, V] {
	return &Cache[K, V]{maxCount: maxCount, maxCost: maxCost, cost: cost, order: list.New(), byKey: make(map[K]*list.Element)}
}

// Get answers the value of k and marks it most recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry[K, V]).val, true
}

// Put stores v under k as the most recently used entry, replacing any
// value k had, then evicts as the bounds require.
func (c *Cache[K, V]) Put(k K, v V) {
	e := &entry[K, V]{key: k, val: v}
	if c.cost != nil {
		e.cost = c.cost(v)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.remove(el)
	}
	c.byKey[k] = c.order.PushFront(e)
	c.total += e.cost
	for c.order.Len() > 1 && (c.order.Len() > c.maxCount || (c.maxCost > 0 && c.total > c.maxCost)) {
		c.remove(c.order.Back())
	}
}

// Remove forgets k and reports whether it was cached.
func (c *Cache[K, V]) Remove(k K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if ok {
		c.remove(el)
	}
	return ok
}

// Each calls fn for every entry, in no particular order, without changing
// their recency. fn must not call the cache.
func (c *Cache[K, V]) Each(fn func(K, V)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.byKey {
		fn(k, el.Value.(*entry[K, V]).val)
	}
}

// Len answers the number of entries and their total cost.
func (c *Cache[K, V]) Len() (count, cost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.total
}

// remove unlinks el; callers hold mu.
func (c *Cache[K, V]) remove(el *list.Element) {
	e := c.order.Remove(el).(*entry[K, V])
	delete(c.byKey, e.key)
	c.total -= e.cost
}
