//go:build unix

package aipimage

import (
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// allocatedBytes returns the bytes the file system allocated to path.
func allocatedBytes(t *testing.T, path string) (int64, bool) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int64(sys.Blocks) * 512, true
}
