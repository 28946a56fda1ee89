//go:build !unix

package aipimage

import "testing"

// allocatedBytes is unknown here: sparseness is not checked.
func allocatedBytes(t *testing.T, path string) (int64, bool) { return 0, false }
