package lru

import "testing"

// TestCountBound: the least recently used entry goes first, Get refreshes
// recency, and replacing a key keeps one entry.
func TestCountBound(t *testing.T) {
	c := New[string, int](2, 0, nil)
	c.Put("a", 1)
	c.Put("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %d, %v", v, ok)
	}
	c.Put("c", 3) // b is least recently used now
	if _, ok := c.Get("b"); ok {
		t.Fatal("b was kept over the count bound")
	}
	c.Put("a", 10)
	if n, _ := c.Len(); n != 2 {
		t.Fatalf("Len = %d after replacing a key, want 2", n)
	}
	if v, _ := c.Get("a"); v != 10 {
		t.Fatalf("a = %d, want the replacement 10", v)
	}
	if !c.Remove("a") || c.Remove("a") {
		t.Fatal("Remove of a present and then absent key")
	}
	seen := map[string]int{}
	c.Each(func(k string, v int) { seen[k] = v })
	if len(seen) != 1 || seen["c"] != 3 {
		t.Fatalf("Each saw %v, want only c", seen)
	}
}

// TestCostBound: the total cost is bounded too, but the newest entry stays
// even when it alone is over the bound.
func TestCostBound(t *testing.T) {
	c := New[string, int](10, 100, func(v int) int { return v })
	c.Put("a", 40)
	c.Put("b", 40)
	c.Put("c", 40) // 120 > 100: a goes
	if _, ok := c.Get("a"); ok {
		t.Fatal("a kept over the cost bound")
	}
	if n, cost := c.Len(); n != 2 || cost != 80 {
		t.Fatalf("Len = %d, %d; want 2, 80", n, cost)
	}
	c.Put("huge", 500)
	if n, cost := c.Len(); n != 1 || cost != 500 {
		t.Fatalf("Len = %d, %d; want only the newest entry", n, cost)
	}
	c.Put("huge", 5)
	if _, cost := c.Len(); cost != 5 {
		t.Fatalf("cost %d after replacing, want 5", cost)
	}
}
