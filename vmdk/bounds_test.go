package vmdk

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// TestHugeHeaderOffsets: sector offsets whose byte offsets overflow int64
// are corrupt, not a panic or an untyped read error (found by FuzzSparse).
func TestHugeHeaderOffsets(t *testing.T) {
	b := make([]byte, 4096)
	for _, h := range []sparseHeader{
		{Version: 1, DescriptorOffset: 0x7fffffffffffff00, DescriptorSize: 1},
		{Version: 1, DescriptorOffset: 1, DescriptorSize: 1 << 54},
		{Version: 1, DescriptorOffset: 1 << 62, DescriptorSize: 1 << 62},
	} {
		h.encode(b)
		_, err := EmbeddedDescriptor(b)
		require.ErrorIs(t, err, ErrCorrupt, "%+v", h)
	}
	h := sparseHeader{Version: 1, Capacity: 2048, GrainSize: 128, NumGTEsPerGT: 512, GDOffset: 1 << 60, DescriptorOffset: 1, DescriptorSize: 1}
	h.encode(b)
	_, err := OpenChain(fstest.MapFS{"d.vmdk": {Data: b}}, "d.vmdk")
	require.ErrorIs(t, err, ErrCorrupt)
}
