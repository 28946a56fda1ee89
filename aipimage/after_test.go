package aipimage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// readDisk reads disk d of point k of the set in dir.
func readDisk(t *testing.T, set Set, k, d int) []byte {
	t.Helper()
	p, err := set.Point(k)
	require.NoError(t, err)
	disk, err := p.Disk(d)
	require.NoError(t, err)
	b, err := io.ReadAll(disk)
	require.NoError(t, err)
	return b
}

func TestWriteIncrementalAfterRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *WriterOptions
		open *OpenOptions
	}{
		{"plain", nil, nil},
		{"encrypted", &WriterOptions{Passphrase: []byte("pw"), ScryptN: 1 << 10}, &OpenOptions{Passphrase: []byte("pw")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			points := writeChain(t, dir, 5, 2, tc.opts)
			r := rand.New(rand.NewPCG(8, 9))
			cur := points[len(points)-1].clone()
			for step := range 2 {
				set, err := OpenDir(dir, tc.open)
				require.NoError(t, err)
				newest := len(set.Points()) - 1
				sources := make([]DiskSource, len(cur))
				for d := range cur {
					changed := mutate(r, cur[d])
					sources[d] = DiskSource{Content: bytes.NewReader(bytes.Clone(cur[d]))}
					if step == 1 {
						sources[d].Changed = changed
					}
				}
				info, err := WriteIncrementalAfter(context.Background(), set, newest, dir, sources, tc.opts)
				require.NoError(t, set.Close())
				require.NoError(t, err)
				for d := range sources {
					require.Nil(t, sources[d].Previous, "the caller's sources are left as they were")
				}
				require.Equal(t, newest+1, info.Sequence)
				require.Equal(t, filepath.Join(dir, FileName(info)), info.File)

				set, err = OpenDir(dir, tc.open)
				require.NoError(t, err)
				require.Len(t, set.Points(), newest+2)
				for d := range cur {
					require.True(t, bytes.Equal(cur[d], readDisk(t, set, newest+1, d)), "step %d disk %d differs", step, d)
				}
				if step == 0 {
					// Compared with the parent: only blocks that differ are stored.
					p, err := set.Point(newest + 1)
					require.NoError(t, err)
					prev := readDisk(t, set, newest, 0)
					changed, err := p.Changed(0)
					require.NoError(t, err)
					bs := int64(info.BlockSize)
					for _, e := range changed {
						for b := e.Off; b < e.End(); b += bs {
							end := min(b+bs, int64(len(prev)))
							require.False(t, bytes.Equal(prev[b:end], cur[0][b:end]), "unchanged block at %d stored", b)
						}
					}
				}
				require.NoError(t, set.Close())
			}
		})
	}
}

func TestWriteIncrementalAfterRefuses(t *testing.T) {
	dir := t.TempDir()
	points := writeChain(t, dir, 6, 1, nil)
	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	last := points[len(points)-1]
	sources := func(n int) []DiskSource {
		var s []DiskSource
		for d := range n {
			s = append(s, DiskSource{Content: bytes.NewReader(last[d%len(last)])})
		}
		return s
	}
	ctx := context.Background()
	files := func(dir string) int {
		ents, err := os.ReadDir(dir)
		require.NoError(t, err)
		return len(ents)
	}
	before := files(dir)

	for _, k := range []int{-1, 2, 99} {
		_, err := WriteIncrementalAfter(ctx, set, k, dir, sources(2), nil)
		require.ErrorIs(t, err, ErrNotInSet, "point %d", k)
	}

	// Point 0 is followed by point 1 in dir: another successor forks it.
	_, err = WriteIncrementalAfter(ctx, set, 0, dir, sources(2), nil)
	require.ErrorIs(t, err, ErrForkedChain)
	var ce *ChainError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, set.Points()[1].File, ce.File)

	_, err = WriteIncrementalAfter(ctx, set, 1, dir, sources(1), nil)
	require.ErrorIs(t, err, ErrInvalidInput)
	require.ErrorContains(t, err, "1 disks given, point 1 has 2")
	_, err = WriteIncrementalAfter(ctx, set, 1, dir, sources(3), nil)
	require.ErrorIs(t, err, ErrInvalidInput)

	resized := sources(2)
	resized[1].Info.Size = int64(len(last[1])) + 512
	_, err = WriteIncrementalAfter(ctx, set, 1, dir, resized, nil)
	require.ErrorIs(t, err, ErrDiskResized)
	var re *ResizeError
	require.ErrorAs(t, err, &re)
	require.Equal(t, ResizeError{Disk: 1, Old: int64(len(last[1])), New: int64(len(last[1])) + 512}, *re)

	// An encrypted parent needs the passphrase, a plain one refuses it.
	_, err = WriteIncrementalAfter(ctx, set, 1, dir, sources(2), &WriterOptions{Passphrase: []byte("x")})
	require.ErrorIs(t, err, ErrInvalidInput)

	require.Equal(t, before, files(dir), "a refusal leaves nothing behind")

	// Elsewhere, a point after point 0 forks nothing (a branch to copy).
	other := t.TempDir()
	info, err := WriteIncrementalAfter(ctx, set, 0, other, sources(2), nil)
	require.NoError(t, err)
	require.Equal(t, 1, info.Sequence)
	require.Equal(t, other, filepath.Dir(info.File))
}

func TestIndexOf(t *testing.T) {
	dir := t.TempDir()
	writeChain(t, dir, 7, 2, nil)
	// A copy still arriving: a third incremental cut in half.
	whole, err := os.ReadFile(filepath.Join(dir, "p02"+FileExt))
	require.NoError(t, err)
	pending := filepath.Join(dir, "p03"+FileExt)
	require.NoError(t, os.WriteFile(pending, whole[:len(whole)/2], 0o644))
	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	require.Len(t, set.Pending(), 1)

	for k, p := range set.Points() {
		got, err := set.IndexOf(p.File)
		require.NoError(t, err)
		require.Equal(t, k, got)
	}
	// A relative path names the same file.
	wd, err := os.Getwd()
	require.NoError(t, err)
	rel, err := filepath.Rel(wd, filepath.Join(dir, "p01"+FileExt))
	require.NoError(t, err)
	k, err := set.IndexOf(rel)
	require.NoError(t, err)
	require.Equal(t, 1, k)

	for name, file := range map[string]string{
		"pending":    pending,
		"missing":    filepath.Join(dir, "nope"+FileExt),
		"other file": writeOther(t),
	} {
		_, err := set.IndexOf(file)
		require.ErrorIs(t, err, ErrNotInSet, name)
		var ce *ChainError
		require.True(t, errors.As(err, &ce), name)
		require.Equal(t, file, ce.File, name)
	}
	_, err = set.IndexOf(pending)
	require.ErrorContains(t, err, "pending")
}

// writeOther writes the full image of another set and returns its path.
func writeOther(t *testing.T) string {
	dir := t.TempDir()
	writeChain(t, dir, 8, 0, nil)
	return filepath.Join(dir, "p00"+FileExt)
}

// An incremental where nothing changed reports an empty, non-nil list: fed
// back as DiskSource.Changed it means "nothing", not "compare".
func TestNothingChangedIsNotNil(t *testing.T) {
	dir := t.TempDir()
	points := writeChain(t, dir, 9, 0, nil)
	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	var sources []DiskSource
	for _, d := range points[0] {
		sources = append(sources, DiskSource{Content: bytes.NewReader(d)})
	}
	info, err := WriteIncrementalAfter(context.Background(), set, 0, dir, sources, nil)
	require.NoError(t, err)
	f, err := OpenFile(info.File, nil)
	require.NoError(t, err)
	defer f.Close()
	changed, err := f.Changed(0)
	require.NoError(t, err)
	require.NotNil(t, changed)
	require.Empty(t, changed)
}
