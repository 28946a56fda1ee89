package regf

import (
	"testing"

	"github.com/standbykit/standbykit/internal/fuzzimage"
)

// fuzzMaxHive caps the size of the hives FuzzOpen builds.
const fuzzMaxHive = 1 << 20

// FuzzOpen opens a hive given as a sparse image (internal/fuzzimage: its
// non-zero bytes only, so that inputs stay small), walks every key and
// value (bounded) and tries edits: errors must be typed, nothing may
// panic. Go's minimizer is quadratic in the input size, so bound it:
//
//	go test -run '^$' -fuzz FuzzOpen -fuzzminimizetime 5s ./p2v/regf
func FuzzOpen(f *testing.F) {
	f.Add(fuzzimage.Sparse(minimalHive()))
	f.Fuzz(func(t *testing.T, data []byte) {
		exercise(t, fuzzimage.Decode(data, fuzzMaxHive).Bytes())
	})
}
