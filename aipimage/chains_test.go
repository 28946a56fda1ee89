package aipimage

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeNewFull starts a new chain after the newest point of the set in dir.
func writeNewFull(t *testing.T, dir string, disks snapshot, opts *WriterOptions) PointInfo {
	t.Helper()
	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	var sources []DiskSource
	for _, d := range disks {
		sources = append(sources, DiskSource{Info: DiskInfo{Size: int64(len(d)), SectorSize: 512}, Content: bytes.NewReader(d)})
	}
	info, err := WriteFullAfter(context.Background(), set, dir, set.Points()[0].Machine, sources, opts)
	require.NoError(t, err)
	return info
}

func addAfter(t *testing.T, dir string, k int, disks snapshot) (PointInfo, error) {
	t.Helper()
	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	if k < 0 {
		k = len(set.Points()) - 1
	}
	var sources []DiskSource
	for _, d := range disks {
		sources = append(sources, DiskSource{Content: bytes.NewReader(d)})
	}
	return WriteIncrementalAfter(context.Background(), set, k, dir, sources, nil)
}

// TestNewFullStartsChain: full, three incrementals, a new full image (an
// "active full") and two incrementals on it read as seven points in two
// chains, each point as it was written; before, the second full image made
// the folder unreadable.
func TestNewFullStartsChain(t *testing.T) {
	dir := t.TempDir()
	want := writeChain(t, dir, 31, 3, nil)
	r := rand.New(rand.NewPCG(31, 32))

	// The new full differs from the newest point, and leaves zero where
	// the old chain had data: nothing of the old chain may show through.
	full := want[3].clone()
	for d := range full {
		mutate(r, full[d])
		clear(full[d][:len(full[d])/4])
	}
	info := writeNewFull(t, dir, full, nil)
	require.True(t, info.Full())
	require.Equal(t, 4, info.Sequence)
	want = append(want, full)
	for range 2 {
		next := want[len(want)-1].clone()
		mutate(r, next[0])
		mutate(r, next[1])
		_, err := addAfter(t, dir, -1, next)
		require.NoError(t, err)
		want = append(want, next)
	}
	checkSet(t, dir, nil, want)

	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	points := set.Points()
	for k, p := range points {
		require.Equal(t, k, p.Sequence)
		require.Equal(t, points[0].SetID, p.SetID)
	}
	chains := set.Chains()
	require.Len(t, chains, 2)
	require.Len(t, chains[0], 4)
	require.Len(t, chains[1], 3)
	require.Equal(t, points[4].PointID, chains[1][0].PointID)
	for k, start := range []int{0, 0, 0, 0, 4, 4, 4} {
		require.Equal(t, start, ChainStart(points, k), "point %d", k)
	}
	require.NoError(t, set.Verify(context.Background(), nil))

	// The new full's Changed is its data, as for any full image.
	p, err := set.Point(4)
	require.NoError(t, err)
	changed, err := p.Changed(0)
	require.NoError(t, err)
	require.Greater(t, changed[0].Off, int64(0), "the zeroed quarter is not stored")

	// The old chain has ended: nothing more follows its last point.
	_, err = addAfter(t, dir, 3, want[3])
	require.ErrorIs(t, err, ErrForkedChain)
}

func TestChainOrderErrors(t *testing.T) {
	ctx := context.Background()
	sources := func(s snapshot) []DiskSource {
		var out []DiskSource
		for _, d := range s {
			out = append(out, DiskSource{Info: DiskInfo{Size: int64(len(d)), SectorSize: 512}, Content: bytes.NewReader(d), Changed: []Extent{{Off: 0, Len: 512}}})
		}
		return out
	}
	t.Run("two full images of one sequence", func(t *testing.T) {
		dir := t.TempDir()
		want := writeChain(t, dir, 33, 1, nil)
		set, err := OpenDir(dir, nil)
		require.NoError(t, err)
		first := set.Points()[0]
		set.Close()
		_, err = WriteFull(ctx, filepath.Join(dir, "again"+FileExt), first.Machine, sources(want[1]), &WriterOptions{SetID: first.SetID})
		require.NoError(t, err)
		_, err = OpenDir(dir, nil)
		require.ErrorIs(t, err, ErrForkedChain)
		require.ErrorContains(t, err, "second full image with sequence 0")
	})
	t.Run("old chain continues past the new full", func(t *testing.T) {
		dir := t.TempDir()
		want := writeChain(t, dir, 34, 2, nil)
		writeNewFull(t, dir, want[2], nil)
		set, err := OpenDir(dir, nil)
		require.NoError(t, err)
		parent := set.Points()[2]
		set.Close()
		_, err = WriteIncremental(ctx, filepath.Join(dir, "late"+FileExt), parent, sources(want[2]), nil)
		require.NoError(t, err)
		_, err = OpenDir(dir, nil)
		require.ErrorIs(t, err, ErrForkedChain)
		require.ErrorContains(t, err, "past the newer full image")
	})
	t.Run("a full image of another set", func(t *testing.T) {
		dir := t.TempDir()
		want := writeChain(t, dir, 35, 1, nil)
		_, err := WriteFull(ctx, filepath.Join(dir, "other"+FileExt), Machine{Hostname: "x"}, sources(want[1]), &WriterOptions{SetID: NewID(), Sequence: 2})
		require.NoError(t, err)
		_, err = OpenDir(dir, nil)
		require.ErrorIs(t, err, ErrWrongSet)
	})
	t.Run("a sequence needs a set", func(t *testing.T) {
		_, err := WriteFull(ctx, filepath.Join(t.TempDir(), "x"+FileExt), Machine{}, sources(snapshot{make([]byte, 4096)}), &WriterOptions{Sequence: 3})
		require.ErrorIs(t, err, ErrInvalidInput)
	})
	t.Run("not while files arrive", func(t *testing.T) {
		dir := t.TempDir()
		want := writeChain(t, dir, 36, 2, nil)
		path := filepath.Join(dir, "p02"+FileExt)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b[:len(b)/2], 0o644))
		set, err := OpenDir(dir, nil)
		require.NoError(t, err)
		defer set.Close()
		_, err = WriteFullAfter(ctx, set, dir, Machine{}, sources(want[2]), nil)
		require.ErrorIs(t, err, ErrIncomplete)
	})
}
