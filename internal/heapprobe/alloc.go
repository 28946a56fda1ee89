package heapprobe

import "runtime"

// Allocated returns how many bytes of heap f allocated (the growth of
// runtime.MemStats.TotalAlloc while it ran), for tests that check that
// hostile input cannot make a parser allocate what it claims. Other
// goroutines' allocations count too: use it outside parallel tests.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
