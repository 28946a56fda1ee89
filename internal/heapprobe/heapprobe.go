// Package heapprobe measures the peak heap of a piece of work, for tests
// that bound memory.
package heapprobe

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Start samples the heap in use every interval until stop is called, and
// stop returns the highest value seen.
func Start(interval time.Duration) (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(interval):
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}
