package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/heapprobe"
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

// Hostile headers: files that claim enormous sizes and counts. Each must
// fail with a typed error having allocated little: the budgets are far
// under what trusting the claim would take.

const hostileDesc = "version=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\nRW 2048 SPARSE \"d.vmdk\"\n"

func TestHostileSparseHeaders(t *testing.T) {
	base := sparseHeader{Version: 1, Capacity: 2048, GrainSize: 128, NumGTEsPerGT: 512, GDOffset: 3, DescriptorOffset: 1, DescriptorSize: 2}
	for name, mutate := range map[string]func(h *sparseHeader){
		"capacity 2^40 sectors, 1-sector grains, 1-entry tables": func(h *sparseHeader) { h.Capacity, h.GrainSize, h.NumGTEsPerGT = 1<<40, 1, 1 },
		"capacity 2^64-1":                  func(h *sparseHeader) { h.Capacity = math.MaxUint64 },
		"2^32-1 entries per table":         func(h *sparseHeader) { h.NumGTEsPerGT = math.MaxUint32 },
		"grains of 2^63 sectors":           func(h *sparseHeader) { h.GrainSize = 1 << 63 },
		"descriptor of 2^54 sectors":       func(h *sparseHeader) { h.DescriptorSize = 1 << 54 },
		"directory at sector 2^63":         func(h *sparseHeader) { h.GDOffset = 1 << 63 },
		"redundant directory at 2^64-1":    func(h *sparseHeader) { h.Flags, h.RGDOffset = flagRedundantGD, math.MaxUint64 },
		"streamOptimized footer past 2^63": func(h *sparseHeader) { h.GDOffset = gdAtEnd },
	} {
		h := base
		mutate(&h)
		b := make([]byte, 8192)
		h.encode(b)
		copy(b[SectorSize:], hostileDesc)
		var chainErr, openErr error
		n := heapprobe.Allocated(func() {
			_, chainErr = OpenChain(fstest.MapFS{"d.vmdk": {Data: b}}, "d.vmdk")
			_, openErr = OpenSparse(&memFile{b: b}, int64(len(b)))
		})
		// The chain reader does not read the redundant directory.
		if h.RGDOffset == 0 {
			require.ErrorIs(t, chainErr, ErrCorrupt, name)
		}
		require.True(t, errors.Is(openErr, ErrCorrupt) || errors.Is(openErr, ErrUnsupported), "%s: %v", name, openErr)
		require.Less(t, n, uint64(256<<10), "%s: allocated %d bytes", name, n)
	}
}

func TestHostileCOWDHeaders(t *testing.T) {
	base := cowdHeader{NumSectors: 2048, GrainSize: 1, GDOffset: 4, NumGDEntries: 1, FreeSector: 5}
	for name, mutate := range map[string]func(h *cowdHeader){
		"capacity 2^32-1 sectors":       func(h *cowdHeader) { h.NumSectors, h.NumGDEntries = math.MaxUint32, 1<<20 },
		"2^32-1 directory entries":      func(h *cowdHeader) { h.NumGDEntries = math.MaxUint32 },
		"grains of 2^31 sectors":        func(h *cowdHeader) { h.GrainSize = 1 << 31 },
		"directory at sector 2^32-1":    func(h *cowdHeader) { h.GDOffset = math.MaxUint32 },
		"free sector 2^32-1":            func(h *cowdHeader) { h.FreeSector = math.MaxUint32 },
		"a table at sector 2^32-1":      nil, // the directory entry, below
		"capacity 0, zero grain tables": func(h *cowdHeader) { h.NumSectors, h.NumGDEntries = 0, 0 },
	} {
		h := base
		b := make([]byte, 8192)
		if mutate != nil {
			mutate(&h)
			h.encode(b)
		} else {
			h.encode(b)
			le32(b[4*SectorSize:], math.MaxUint32)
		}
		desc := "version=1\nCID=00000002\nparentCID=ffffffff\ncreateType=\"vmfsSparse\"\nRW 2048 VMFSSPARSE \"d-delta.vmdk\"\n"
		var chainErr, openErr error
		n := heapprobe.Allocated(func() {
			var c *Chain
			c, chainErr = OpenChain(fstest.MapFS{"d.vmdk": {Data: []byte(desc)}, "d-delta.vmdk": {Data: b}}, "d.vmdk")
			if chainErr == nil {
				// The directory is read at open, the tables when used.
				_, chainErr = c.Allocated(0)
			}
			_, openErr = OpenCOWD(&memFile{b: b}, int64(len(b)))
		})
		// The chain reader does not need the free sector, the writer does.
		if h.FreeSector == base.FreeSector {
			require.True(t, errors.Is(chainErr, ErrCorrupt) || errors.Is(chainErr, ErrUnsupported), "%s: %v", name, chainErr)
		}
		require.True(t, errors.Is(openErr, ErrCorrupt) || errors.Is(openErr, ErrUnsupported), "%s: %v", name, openErr)
		require.Less(t, n, uint64(256<<10), "%s: allocated %d bytes", name, n)
	}
}

func TestHostileDescriptors(t *testing.T) {
	// A 4 MiB sparse extent whose grain directory takes all of it: 2^20
	// entries, decoded and kept once per extent line naming the file. 64
	// lines made 512 MiB.
	h := sparseHeader{Version: 1, Capacity: 1 << 40, GrainSize: 128, NumGTEsPerGT: 8192, GDOffset: 1}
	big := make([]byte, 4<<20+2*SectorSize)
	h.encode(big)
	var repeated strings.Builder
	repeated.WriteString("version=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n")
	for range 64 {
		fmt.Fprintf(&repeated, "RW %d SPARSE \"s.vmdk\"\n", 1<<20)
	}
	// A chain whose parent hint names itself (CID = parentCID) went round
	// 64 times, opening every extent each time.
	loop := "version=1\nCID=00000005\nparentCID=00000005\ncreateType=\"twoGbMaxExtentSparse\"\nparentFileNameHint=\"d.vmdk\"\nRW 1048576 SPARSE \"s.vmdk\"\n"
	huge := "version=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"vmfs\"\n" + strings.Repeat("ddb.comment = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n", 1<<16)
	for name, tc := range map[string]struct {
		desc   string
		budget uint64
	}{
		"one sparse file on 64 extent lines": {repeated.String(), 16 << 20},
		"a parent hint naming itself":        {loop, 16 << 20},
		"a 3 MiB descriptor":                 {huge, 64 << 10},
		"an extent of 2^62 sectors":          {"version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 4611686018427387904 VMFS \"s.vmdk\"\n", 64 << 10},
		"an extent at sector 2^62":           {"version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"s.vmdk\" 4611686018427387904\n", 64 << 10},
	} {
		fsys := fstest.MapFS{"d.vmdk": {Data: []byte(tc.desc)}, "s.vmdk": {Data: big}}
		var err error
		n := heapprobe.Allocated(func() { _, err = OpenChain(fsys, "d.vmdk") })
		require.ErrorIs(t, err, ErrCorrupt, name)
		require.Less(t, n, tc.budget, "%s: allocated %d bytes", name, n)
	}
	_, err := ParseDescriptor(bytes.Repeat([]byte("# a comment line\n"), 1<<16))
	require.ErrorIs(t, err, ErrCorrupt)
}

func le32(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }
