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

// readAll opens data as an image, reads every disk of it fully and verifies
// it; it returns the first error and the disks read.
func readAll(data []byte, opts *OpenOptions) ([][]byte, error) {
	f, err := NewFile(bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return nil, err
	}
	f.info.File = "mem"
	var disks [][]byte
	p := &ImagePoint{layers: []*File{f}}
	for d := range f.info.Disks {
		r, err := p.Disk(d)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return disks, err
		}
		disks = append(disks, b)
	}
	return disks, f.Verify(context.Background(), nil)
}

func smallImage(t *testing.T, opts *WriterOptions) ([]byte, [][]byte) {
	dir := t.TempDir()
	points := writeChain(t, dir, 9, 0, opts)
	data, err := os.ReadFile(filepath.Join(dir, "p00"+FileExt))
	require.NoError(t, err)
	return data, points[0]
}

func TestTruncatedFileIsIncomplete(t *testing.T) {
	data, _ := smallImage(t, nil)
	r := rand.New(rand.NewPCG(5, 5))
	cuts := []int{0, 1, 20, 31, 32, 100, 4095, 4096, len(data) - 1, len(data) - trailerLen, len(data) - trailerLen + 8}
	for range 40 {
		cuts = append(cuts, r.IntN(len(data)))
	}
	for _, n := range cuts {
		_, err := readAll(data[:n], nil)
		require.ErrorIs(t, err, ErrIncomplete, "cut at %d of %d", n, len(data))
		require.NotErrorIs(t, err, ErrCorrupt)
	}
	// A copy that preallocates the whole file and fills it in order.
	pre := make([]byte, len(data))
	for _, n := range []int{0, 4096, len(data) / 2, len(data) - 1} {
		copy(pre, data[:n])
		_, err := readAll(pre, nil)
		require.ErrorIs(t, err, ErrIncomplete, "preallocated, %d bytes copied", n)
	}
}

func TestFlippedBitIsCorruptNeverWrongData(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    *WriterOptions
		o    *OpenOptions
	}{
		{"plain", nil, nil},
		{"encrypted", &WriterOptions{Passphrase: []byte("pw"), ScryptN: 1 << 4}, &OpenOptions{Passphrase: []byte("pw")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, want := smallImage(t, tc.w)
			f, err := NewFile(bytes.NewReader(data), int64(len(data)), tc.o)
			require.NoError(t, err)
			// Bits in every structure: header, metadata, first block
			// header and payload, an index page, the directory, the
			// trailer, and random ones.
			var positions []int64
			add := func(off int64, n int) {
				for i := range n {
					positions = append(positions, off+int64(i))
				}
			}
			add(0, headerPrefixLen)
			add(headerPrefixLen, 40)
			ref := f.pages[0][0]
			e0, ok, err := f.lookup(0, ref.first)
			require.True(t, ok)
			require.NoError(t, err)
			add(e0.offset, blockHeaderLen+8)
			add(ref.offset, pageHeaderLen+indexEntryLen)
			add(f.trailer.dirOffset, int(f.trailer.dirLen))
			add(int64(len(data)-trailerLen), trailerLen)
			r := rand.New(rand.NewPCG(1, 1))
			for range 200 {
				positions = append(positions, r.Int64N(int64(len(data))))
			}
			for _, pos := range positions {
				bad := bytes.Clone(data)
				bad[pos] ^= 1 << r.IntN(8)
				got, err := readAll(bad, tc.o)
				require.ErrorIs(t, err, ErrCorrupt, "bit flipped at byte %d of %d", pos, len(data))
				for d := range got {
					require.True(t, bytes.Equal(want[d], got[d]), "byte %d flipped: disk %d read back wrong without an error", pos, d)
				}
			}
		})
	}
}

func TestPassphrase(t *testing.T) {
	data, want := smallImage(t, &WriterOptions{Passphrase: []byte("right"), ScryptN: 1 << 4})
	_, err := readAll(data, &OpenOptions{Passphrase: []byte("wrong")})
	require.ErrorIs(t, err, ErrWrongPassphrase)
	_, err = readAll(data, nil)
	require.ErrorIs(t, err, ErrPassphraseRequired)
	got, err := readAll(data, &OpenOptions{Passphrase: []byte("right")})
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for d := range want {
		require.True(t, bytes.Equal(want[d], got[d]), "disk %d differs", d)
	}
	// The plaintext must not appear in the file.
	require.False(t, bytes.Contains(data, []byte("registry boot")) || bytes.Contains(data, []byte("standby registry")))

	dir := t.TempDir()
	writeChain(t, dir, 1, 2, &WriterOptions{Passphrase: []byte("right"), ScryptN: 1 << 4})
	_, err = OpenDir(dir, &OpenOptions{Passphrase: []byte("nope")})
	require.ErrorIs(t, err, ErrWrongPassphrase)
	var fe *FileError
	require.ErrorAs(t, err, &fe)
	require.Contains(t, fe.File, "p0")
}

func TestChainErrors(t *testing.T) {
	newChain := func(t *testing.T, n int) string {
		dir := t.TempDir()
		writeChain(t, dir, 11, n, nil)
		return dir
	}
	file := func(dir string, k int) string { return filepath.Join(dir, "p0"+string(rune('0'+k))+FileExt) }
	info := func(t *testing.T, path string) PointInfo {
		f, err := OpenFile(path, nil)
		require.NoError(t, err)
		defer f.Close()
		return f.Info()
	}
	incremental := func(t *testing.T, path string, parent PointInfo) {
		d := make([]DiskSource, len(parent.Disks))
		for i, di := range parent.Disks {
			d[i] = DiskSource{Content: bytes.NewReader(make([]byte, di.Size)), Changed: []Extent{{Off: 0, Len: 4096}}}
		}
		_, err := WriteIncremental(context.Background(), path, parent, d, nil)
		require.NoError(t, err)
	}
	expect := func(t *testing.T, dir string, want error, wantFile string) {
		_, err := OpenDir(dir, nil)
		require.ErrorIs(t, err, want)
		var ce *ChainError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, wantFile, filepath.Base(ce.File))
	}

	t.Run("missing parent", func(t *testing.T) {
		dir := newChain(t, 4)
		require.NoError(t, os.Remove(file(dir, 2)))
		expect(t, dir, ErrMissingParent, "p03"+FileExt)
	})
	t.Run("forked", func(t *testing.T) {
		dir := newChain(t, 3)
		incremental(t, filepath.Join(dir, "fork"+FileExt), info(t, file(dir, 1)))
		_, err := OpenDir(dir, nil)
		require.ErrorIs(t, err, ErrForkedChain)
	})
	t.Run("duplicate point", func(t *testing.T) {
		dir := newChain(t, 2)
		b, err := os.ReadFile(file(dir, 1))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "copy"+FileExt), b, 0o644))
		_, err = OpenDir(dir, nil)
		require.ErrorIs(t, err, ErrForkedChain)
	})
	t.Run("wrong set", func(t *testing.T) {
		dir, other := newChain(t, 2), t.TempDir()
		writeChain(t, other, 12, 1, nil)
		require.NoError(t, os.Rename(filepath.Join(other, "p01"+FileExt), filepath.Join(dir, "stranger"+FileExt)))
		expect(t, dir, ErrWrongSet, "stranger"+FileExt)
	})
	t.Run("sequence gap", func(t *testing.T) {
		dir := newChain(t, 2)
		parent := info(t, file(dir, 2))
		parent.Sequence++ // the writer trusts its parent: a buggy vendor tool
		incremental(t, file(dir, 3), parent)
		expect(t, dir, ErrSequenceGap, "p03"+FileExt)
	})
	t.Run("no full image", func(t *testing.T) {
		dir := newChain(t, 2)
		require.NoError(t, os.Remove(file(dir, 0)))
		_, err := OpenDir(dir, nil)
		require.ErrorIs(t, err, ErrNoFullImage)
		_, err = OpenDir(t.TempDir(), nil)
		require.ErrorIs(t, err, ErrNoFullImage)
	})
	t.Run("replicating copies are pending", func(t *testing.T) {
		dir := newChain(t, 5)
		truncate := func(k int) {
			b, err := os.ReadFile(file(dir, k))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(file(dir, k), b[:len(b)/2], 0o644))
		}
		truncate(5)
		set, err := OpenDir(dir, nil)
		require.NoError(t, err)
		require.Len(t, set.Points(), 5)
		require.Len(t, set.Pending(), 1)
		set.Close()

		truncate(3) // a middle file still copying: its children wait
		set, err = OpenDir(dir, nil)
		require.NoError(t, err)
		defer set.Close()
		require.Len(t, set.Points(), 3)
		require.Len(t, set.Pending(), 3)
		for _, p := range set.Pending() {
			require.ErrorIs(t, p.Reason, ErrIncomplete)
		}
	})
	t.Run("errors are not incomplete", func(t *testing.T) {
		dir := newChain(t, 1)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "junk"+FileExt), []byte("this is not an image file at all, sorry"), 0o644))
		_, err := OpenDir(dir, nil)
		require.ErrorIs(t, err, ErrNotImage)
		require.False(t, errors.Is(err, ErrIncomplete))
	})
}
