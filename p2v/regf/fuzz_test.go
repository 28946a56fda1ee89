package regf

import "testing"

// FuzzOpen opens arbitrary bytes, walks every key and value (bounded)
// and tries edits: errors must be typed, nothing may panic.
//
// Hives are at least 8 KiB, and Go's minimizer is quadratic in the input
// size, so bound the minimization or the fuzzer stalls on each new input:
//
//	go test -run '^$' -fuzz FuzzOpen -fuzzminimizetime 200x ./p2v/regf
func FuzzOpen(f *testing.F) {
	f.Add(minimalHive())
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		exercise(t, b)
	})
}
