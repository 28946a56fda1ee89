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

// checkSet reopens dir and compares every point's disks with want.
func checkSet(t *testing.T, dir string, opts *OpenOptions, want []snapshot) {
	t.Helper()
	set, err := OpenDir(dir, opts)
	require.NoError(t, err)
	defer set.Close()
	require.Len(t, set.Points(), len(want))
	for k := range want {
		for d := range want[k] {
			got := readDisk(t, set, k, d)
			require.Equal(t, len(want[k][d]), len(got), "point %d disk %d size", k, d)
			if !bytes.Equal(want[k][d], got) {
				i := 0
				for i < len(got) && got[i] == want[k][d][i] {
					i++
				}
				t.Fatalf("point %d disk %d differs at byte %d", k, d, i)
			}
		}
	}
}

func dirNames(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestResizeRefused: a disk that grew or shrank since the parent point is
// refused with its sizes, and nothing is written; before, a grown disk was
// cut at the old size without a word and a shrunk one failed on reading.
func TestResizeRefused(t *testing.T) {
	dir := t.TempDir()
	points := writeChain(t, dir, 21, 1, nil)
	last := points[len(points)-1]
	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	before := dirNames(t, dir)
	old := int64(len(last[0]))
	for _, size := range []int64{old + 16<<20, old - 1<<20} {
		disk0 := make([]byte, size)
		copy(disk0, last[0])
		sources := []DiskSource{{Content: bytes.NewReader(disk0)}, {Content: bytes.NewReader(last[1])}}
		_, err := WriteIncrementalAfter(context.Background(), set, 1, dir, sources, nil)
		var re *ResizeError
		require.ErrorAs(t, err, &re, "size %d", size)
		require.ErrorIs(t, err, ErrDiskResized)
		require.Equal(t, ResizeError{Disk: 0, Old: old, New: size}, *re)

		// The lower-level writer, given the changed ranges, refuses too.
		parent := set.Points()[1]
		sources[0].Changed, sources[1].Changed = []Extent{{Off: 0, Len: 4096}}, []Extent{}
		_, err = WriteIncremental(context.Background(), filepath.Join(dir, "x"+FileExt), parent, sources, nil)
		require.ErrorAs(t, err, &re)
		require.Equal(t, size, re.New)

		// So does a source that states its size but reads as the old one.
		sources = []DiskSource{{Info: DiskInfo{Size: size}, Content: bytes.NewReader(last[0])}, {Content: bytes.NewReader(last[1])}}
		_, err = WriteIncrementalAfter(context.Background(), set, 1, dir, sources, nil)
		require.ErrorIs(t, err, ErrDiskResized)
	}
	require.Equal(t, before, dirNames(t, dir), "a refusal leaves nothing behind")
}

// TestResizeGrowShrinkGrow writes resized points (grown, shrunk, grown
// again) in both of the writer's modes and reads every point back: each
// reads at its own size, and a region a shrink cut off never reappears
// when the disk grows again.
func TestResizeGrowShrinkGrow(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[encrypted], func(t *testing.T) {
			var wopts *WriterOptions
			var oopts *OpenOptions
			if encrypted {
				wopts = &WriterOptions{Passphrase: []byte("pw"), ScryptN: 1 << 10}
				oopts = &OpenOptions{Passphrase: []byte("pw")}
			}
			dir := t.TempDir()
			want := writeChain(t, dir, 22, 1, wopts)
			r := rand.New(rand.NewPCG(22, 23))
			resized := func(o *WriterOptions) *WriterOptions {
				c := WriterOptions{Resized: true}
				if o != nil {
					c = *o
					c.Resized = true
				}
				return &c
			}
			add := func(next snapshot, changed [][]Extent, useAfter bool) PointInfo {
				t.Helper()
				set, err := OpenDir(dir, oopts)
				require.NoError(t, err)
				defer set.Close()
				k := len(set.Points()) - 1
				sources := make([]DiskSource, len(next))
				for d := range next {
					sources[d] = DiskSource{Content: bytes.NewReader(next[d])}
					if changed != nil {
						sources[d].Changed = changed[d]
					}
				}
				var info PointInfo
				if useAfter {
					info, err = WriteIncrementalAfter(context.Background(), set, k, dir, sources, resized(wopts))
				} else {
					parent := set.Points()[k]
					p := parent
					p.Sequence++
					info, err = WriteIncremental(context.Background(), filepath.Join(dir, FileName(p)), parent, sources, resized(wopts))
				}
				require.NoError(t, err)
				want = append(want, next)
				checkSet(t, dir, oopts, want)
				return info
			}
			oldSize := int64(len(want[1][0]))

			// Grow disk 0 by 1.5 MiB and a bit: data in the new part (and
			// a zero run), the old last block rewritten. Compared with the
			// parent.
			grown := want[len(want)-1].clone()
			grown[0] = append(grown[0], make([]byte, 3<<19+1024)...)
			fillMixed(r, grown[0][oldSize-300:oldSize+200<<10])
			fillMixed(r, grown[0][oldSize+600<<10:])
			info := add(grown, nil, true)
			require.Equal(t, []DiskResize{{Disk: 0, From: oldSize}}, info.Resized)
			require.Equal(t, int64(len(grown[0])), info.Disks[0].Size)

			// Shrink it below the old size, changing almost nothing: the
			// caller names one range.
			shrunk := grown.clone()
			shrunk[0] = shrunk[0][:1<<20+512]
			copy(shrunk[0][100:], "after the shrink")
			info = add(shrunk, [][]Extent{{{Off: 100, Len: 16}}, {}}, false)
			require.Equal(t, []DiskResize{{Disk: 0, From: int64(len(grown[0]))}}, info.Resized)

			// Grow it back: what the shrink cut off reads as the new
			// content (zero, but for one run), not as before the shrink,
			// even though the caller says nothing changed.
			regrown := shrunk.clone()
			regrown[0] = append(regrown[0], make([]byte, 2<<20)...)
			copy(regrown[0][2<<20:], "new data past the old end")
			add(regrown, [][]Extent{{}, {}}, false)

			// An ordinary incremental follows at the new size.
			next := regrown.clone()
			mutate(r, next[0])
			mutate(r, next[1])
			info = add(next, nil, true)
			require.Empty(t, info.Resized)
		})
	}
}

// TestResizeMustMatchParent: a file that records a resize from a size its
// parent does not have breaks the chain.
func TestResizeMustMatchParent(t *testing.T) {
	dir := t.TempDir()
	writeChain(t, dir, 24, 1, nil)
	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	parent := set.Points()[1]
	set.Close()
	lie := parent
	lie.Disks = append([]DiskInfo(nil), parent.Disks...)
	lie.Disks[0].Size += 4096 // the writer believes another parent size
	disks := append([]DiskInfo(nil), parent.Disks...)
	disks[0].Size += 8192
	w, err := NewResizedWriter(filepath.Join(dir, "p02"+FileExt), lie, disks, nil)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, err = OpenDir(dir, nil)
	require.ErrorIs(t, err, ErrDiskMismatch)

	_, err = NewResizedWriter(filepath.Join(dir, "p03"+FileExt), parent, disks[:1], nil)
	require.ErrorIs(t, err, ErrInvalidInput)
	disks[1].SectorSize = 4096
	_, err = NewResizedWriter(filepath.Join(dir, "p03"+FileExt), parent, disks, nil)
	require.ErrorIs(t, err, ErrInvalidInput)
}
