package aipimage

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/heapprobe"
)

// sparseDisk is a synthetic disk: one 64 KiB run of data every stride
// bytes, zero elsewhere. It costs no memory whatever its size.
type sparseDisk struct {
	size, stride int64
	gen          byte
}

func (s sparseDisk) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > s.size-off {
		n = int(s.size - off)
	}
	clear(p[:n])
	// Fill the data runs that overlap [off, off+n).
	for run := off / s.stride * s.stride; run < off+int64(n); run += s.stride {
		lo, hi := max(run, off), min(run+64<<10, off+int64(n))
		for pos := lo; pos < hi; pos++ {
			p[pos-off] = byte(pos>>9) ^ s.gen
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestMemoryBoundedOnLargeDisk writes and reads a 16 GiB disk whose every
// block is recorded in an incremental (256 Ki index entries) and checks
// that the heap stays far below the 256 MiB budget.
func TestMemoryBoundedOnLargeDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("large synthetic disk")
	}
	var size int64 = 16 << 30
	if raceEnabled {
		size = 2 << 30
	}
	dir := t.TempDir()
	runtime.GC()
	stop := heapprobe.Start(5 * time.Millisecond)
	ctx := context.Background()
	// Sparse data: the full image holds 16 Ki data blocks of 64 KiB.
	full := sparseDisk{size: size, stride: 1 << 20, gen: 1}
	info, err := WriteFull(ctx, filepath.Join(dir, "big-0"+FileExt), Machine{Hostname: "big"},
		[]DiskSource{{Info: DiskInfo{Size: size, SectorSize: 512}, Content: full}}, nil)
	require.NoError(t, err)
	// The incremental claims every block changed: 256 Ki index entries,
	// most of them zero blocks, so the index alone is 8 MiB on disk.
	next := sparseDisk{size: size, stride: 16 << 20, gen: 2}
	_, err = WriteIncremental(ctx, filepath.Join(dir, "big-1"+FileExt), info,
		[]DiskSource{{Content: next, Changed: []Extent{{Off: 0, Len: size}}}}, nil)
	require.NoError(t, err)

	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	p, err := set.Point(1)
	require.NoError(t, err)
	changed, err := p.Changed(0)
	require.NoError(t, err)
	require.Equal(t, []Extent{{Off: 0, Len: size}}, changed)
	disk, err := p.Disk(0)
	require.NoError(t, err)
	buf, want := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off+int64(len(buf)) <= size; off += size / 61 { // a spread of reads across the disk
		_, err := disk.ReadAt(buf, off)
		require.NoError(t, err)
		next.ReadAt(want, off)
		require.Equal(t, want, buf, "offset %d", off)
	}
	peak := stop()
	t.Logf("peak heap in use: %.1f MiB", float64(peak)/(1<<20))
	require.Less(t, peak, uint64(64<<20), "heap must stay well under the 256 MiB budget")
}
