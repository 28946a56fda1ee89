package aipimage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// holesSupported reports whether the file system of dir stores a file with
// nothing written as a hole.
func holesSupported(t *testing.T, dir string) bool {
	t.Helper()
	probe := filepath.Join(dir, "probe")
	f, err := os.Create(probe)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(4<<20))
	require.NoError(t, f.Close())
	defer os.Remove(probe)
	alloc, ok := allocatedBytes(t, probe)
	return ok && alloc < 4<<20
}

func TestExtractSparse(t *testing.T) {
	dir := t.TempDir()
	// A mostly zero disk whose size ends in a short grain, with data in
	// small runs, one of them in the last grain; an incremental changes
	// some and zeroes one, so reads cross layers.
	size := int64(12<<20 + 512*3)
	disk := make([]byte, size)
	for _, off := range []int64{0, 5000, 3 << 20, 7<<20 + 4096*3 + 100, size - 700} {
		copy(disk[off:], bytes.Repeat([]byte("data"), 100))
	}
	ctx := context.Background()
	full, err := WriteFull(ctx, filepath.Join(dir, "s-0"+FileExt), Machine{Hostname: "s"},
		[]DiskSource{{Info: DiskInfo{Size: size, SectorSize: 512}, Content: bytes.NewReader(disk)}}, nil)
	require.NoError(t, err)
	prev := bytes.Clone(disk)
	copy(disk[9<<20:], "new data")
	clear(disk[0:400])
	_, err = WriteIncremental(ctx, filepath.Join(dir, "s-1"+FileExt), full,
		[]DiskSource{{Content: bytes.NewReader(disk), Previous: bytes.NewReader(prev)}}, nil)
	require.NoError(t, err)

	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	p, err := set.Point(1)
	require.NoError(t, err)
	src, err := p.Disk(0)
	require.NoError(t, err)

	out := t.TempDir()
	path := filepath.Join(out, "disk0.raw")
	require.NoError(t, os.WriteFile(path, []byte("an older extraction"), 0o644))
	n, err := ExtractSparse(ctx, path, src)
	require.NoError(t, err)
	require.Equal(t, size, n)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(disk, got), "extracted file differs from the disk")
	require.NoFileExists(t, path+".partial")

	if !holesSupported(t, out) {
		t.Log("the file system of the temporary folder stores no holes: sparseness not checked")
		return
	}
	alloc, _ := allocatedBytes(t, path)
	require.Less(t, alloc, size/4, "a mostly zero disk must extract sparse (%d of %d bytes allocated)", alloc, size)
}

// cancelAfter cancels a context after its first read.
type cancelAfter struct {
	r      io.ReaderAt
	cancel context.CancelFunc
}

func (c cancelAfter) ReadAt(p []byte, off int64) (int, error) {
	c.cancel()
	return c.r.ReadAt(p, off)
}

type failingReader struct{ after int64 }

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.after {
		return 0, errors.New("device gone")
	}
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

func TestExtractSparseLeavesNothingOnError(t *testing.T) {
	const size = 10 << 20
	disk := bytes.Repeat([]byte{1}, size)
	dir := t.TempDir()
	path := filepath.Join(dir, "disk.raw")
	ctx, cancel := context.WithCancel(context.Background())
	_, err := ExtractSparse(ctx, path, io.NewSectionReader(cancelAfter{bytes.NewReader(disk), cancel}, 0, size))
	require.ErrorIs(t, err, context.Canceled)

	_, err = ExtractSparse(context.Background(), path, io.NewSectionReader(failingReader{after: 5 << 20}, 0, size))
	require.ErrorContains(t, err, "device gone")

	// A disk shorter than its section claims.
	_, err = ExtractSparse(context.Background(), path, io.NewSectionReader(bytes.NewReader(disk[:size-1]), 0, size))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)

	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, ents, "nothing may be left after a failed extraction")

	// An existing file is kept when the extraction fails.
	require.NoError(t, os.WriteFile(path, []byte("keep me"), 0o644))
	_, err = ExtractSparse(ctx, path, io.NewSectionReader(bytes.NewReader(disk), 0, size))
	require.ErrorIs(t, err, context.Canceled)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "keep me", string(b))
}

func TestExtractSparseRefuses(t *testing.T) {
	dir := t.TempDir()
	src := io.NewSectionReader(bytes.NewReader(make([]byte, 4096)), 0, 4096)
	_, err := ExtractSparse(context.Background(), dir, src)
	require.ErrorIs(t, err, ErrInvalidInput, "a directory is not replaced")

	path := filepath.Join(dir, "d.raw")
	require.NoError(t, os.WriteFile(path+".partial", nil, 0o644))
	_, err = ExtractSparse(context.Background(), path, src)
	require.ErrorIs(t, err, ErrInvalidInput, "another extraction's partial file is not taken over")
	require.FileExists(t, path+".partial")
	require.NoFileExists(t, path)
}
