package aipimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fillMixed writes data of the kinds real disks hold into p: runs of
// zeros, text-like compressible bytes, and random bytes.
func fillMixed(r *rand.Rand, p []byte) {
	for i := 0; i < len(p); {
		n := min(len(p)-i, 512*(1+r.IntN(64)))
		switch r.IntN(3) {
		case 0:
			clear(p[i : i+n])
		case 1:
			words := []string{"boot ", "volume ", "registry ", "\n", "0000 ", "config=", "standby "}
			for j := i; j < i+n; {
				j += copy(p[j:i+n], words[r.IntN(len(words))])
			}
		default:
			for j := i; j < i+n; j++ {
				p[j] = byte(r.Uint32())
			}
		}
		i += n
	}
}

// mutate changes a few random ranges of disk (some to zero) and returns them.
func mutate(r *rand.Rand, disk []byte) []Extent {
	var changed []Extent
	for range 1 + r.IntN(6) {
		off := r.Int64N(int64(len(disk)))
		n := min(int64(len(disk))-off, 1+r.Int64N(200<<10))
		if r.IntN(4) == 0 {
			clear(disk[off : off+n])
		} else {
			fillMixed(r, disk[off:off+n])
		}
		changed = append(changed, Extent{Off: off, Len: n})
	}
	return changed
}

type snapshot [][]byte

func (s snapshot) clone() snapshot {
	c := make(snapshot, len(s))
	for i := range s {
		c[i] = bytes.Clone(s[i])
	}
	return c
}

// writeChain writes a full image and n incrementals of random disks into
// dir and returns each point's expected content.
func writeChain(t testing.TB, dir string, seed uint64, n int, opts *WriterOptions) []snapshot {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	sizes := []int64{2<<20 + 512*5, 700 << 10}
	cur := make(snapshot, len(sizes))
	var sources []DiskSource
	for i, size := range sizes {
		cur[i] = make([]byte, size)
		// Leave a zero hole so the full image skips blocks.
		fillMixed(r, cur[i][:size/3])
		fillMixed(r, cur[i][size/2:])
		sources = append(sources, DiskSource{Info: DiskInfo{Size: size, SectorSize: 512}, Content: bytes.NewReader(cur[i])})
	}
	ctx := context.Background()
	machine := Machine{Hostname: "db01", OSHint: "Windows Server 2019", Firmware: FirmwareUEFI}
	info, err := WriteFull(ctx, filepath.Join(dir, "p00"+FileExt), machine, sources, opts)
	require.NoError(t, err)
	points := []snapshot{cur.clone()}
	for k := 1; k <= n; k++ {
		prev := cur.clone()
		srcs := make([]DiskSource, len(sizes))
		for d := range sizes {
			changed := mutate(r, cur[d])
			srcs[d] = DiskSource{Content: bytes.NewReader(bytes.Clone(cur[d]))}
			if k%2 == 0 {
				srcs[d].Changed = changed
			} else {
				srcs[d].Previous = bytes.NewReader(prev[d])
			}
		}
		info, err = WriteIncremental(ctx, filepath.Join(dir, fmt.Sprintf("p%02d%s", k, FileExt)), info, srcs, opts)
		require.NoError(t, err)
		require.Equal(t, k, info.Sequence)
		points = append(points, cur.clone())
	}
	return points
}

func TestRoundTripChain(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *WriterOptions
		open *OpenOptions
	}{
		{"plain", nil, nil},
		{"encrypted-16k-blocks", &WriterOptions{Passphrase: []byte("s3cret"), ScryptN: 1 << 10, BlockSize: 16 << 10, Workers: 3},
			&OpenOptions{Passphrase: []byte("s3cret")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			points := writeChain(t, dir, 42, 21, tc.opts)
			set, err := OpenDir(dir, tc.open)
			require.NoError(t, err)
			defer set.Close()
			require.Empty(t, set.Pending())
			infos := set.Points()
			require.Len(t, infos, len(points))
			require.NoError(t, set.Verify(context.Background(), nil))
			r := rand.New(rand.NewPCG(3, 4))
			for k, want := range points {
				require.Equal(t, k, infos[k].Sequence)
				p, err := set.Point(k)
				require.NoError(t, err)
				for d := range want {
					disk, err := p.Disk(d)
					require.NoError(t, err)
					got, err := io.ReadAll(disk)
					require.NoError(t, err)
					require.True(t, bytes.Equal(want[d], got), "point %d disk %d differs", k, d)
					for range 20 {
						off := r.Int64N(int64(len(want[d])))
						buf := make([]byte, r.IntN(300<<10))
						n, err := disk.ReadAt(buf, off)
						wantN := min(len(buf), len(want[d])-int(off))
						require.Equal(t, wantN, n)
						if n < len(buf) {
							require.ErrorIs(t, err, io.EOF)
						} else {
							require.NoError(t, err)
						}
						require.Equal(t, want[d][off:off+int64(n)], buf[:n])
					}
					checkChanged(t, p, d, points, k)
				}
			}
		})
	}
}

// checkChanged asserts that every byte that differs from the previous point
// lies inside Changed, and that Changed is block-aligned and sorted.
func checkChanged(t *testing.T, p Point, d int, points []snapshot, k int) {
	changed, err := p.Changed(d)
	require.NoError(t, err)
	bs := int64(p.Info().BlockSize)
	size := int64(len(points[k][d]))
	inside := make([]bool, size)
	for i, e := range changed {
		require.Zero(t, e.Off%bs)
		require.True(t, e.End() == size || e.End()%bs == 0)
		if i > 0 {
			require.Greater(t, e.Off, changed[i-1].End())
		}
		for j := e.Off; j < e.End(); j++ {
			inside[j] = true
		}
	}
	var prev []byte
	if k > 0 {
		prev = points[k-1][d]
	} else {
		prev = make([]byte, size)
	}
	for j := range size {
		if prev[j] != points[k][d][j] && !inside[j] {
			t.Fatalf("point %d disk %d: byte %d changed but is outside Changed", k, d, j)
		}
	}
}

func TestFullImageSkipsZeroBlocks(t *testing.T) {
	dir := t.TempDir()
	disk := make([]byte, 1<<20)
	copy(disk[128<<10:], "hello")
	info, err := WriteFull(context.Background(), filepath.Join(dir, "a"+FileExt), Machine{Hostname: "h"},
		[]DiskSource{{Info: DiskInfo{Size: 1 << 20, SectorSize: 512}, Content: bytes.NewReader(disk)}}, nil)
	require.NoError(t, err)
	f, err := OpenFile(info.File, nil)
	require.NoError(t, err)
	defer f.Close()
	changed, err := f.Changed(0)
	require.NoError(t, err)
	require.Equal(t, []Extent{{Off: 128 << 10, Len: 64 << 10}}, changed)
	st, err := os.Stat(info.File)
	require.NoError(t, err)
	require.Less(t, st.Size(), int64(16<<10), "one mostly-zero block compresses to little")
}

func TestWriterLeavesNothingOnFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x"+FileExt)
	failing := errReader{errors.New("disk read error")}
	_, err := WriteFull(context.Background(), path, Machine{}, []DiskSource{{Info: DiskInfo{Size: 1 << 20, SectorSize: 512}, Content: failing}}, nil)
	require.ErrorContains(t, err, "disk read error")
	entries, _ := os.ReadDir(dir)
	require.Empty(t, entries)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = WriteFull(ctx, path, Machine{}, []DiskSource{{Info: DiskInfo{Size: 1 << 20, SectorSize: 512}, Content: bytes.NewReader(make([]byte, 1<<20))}}, nil)
	require.ErrorIs(t, err, context.Canceled)
	entries, _ = os.ReadDir(dir)
	require.Empty(t, entries)
}

type errReader struct{ err error }

func (e errReader) ReadAt([]byte, int64) (int, error) { return 0, e.err }

// TestSmallReads reads every point in odd-sized small requests, the way a
// filesystem parser or io.Copy does, which exercises the partial-block
// cache across block and layer boundaries.
func TestSmallReads(t *testing.T) {
	dir := t.TempDir()
	points := writeChain(t, dir, 77, 4, nil)
	set, err := OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	for k, want := range points {
		p, err := set.Point(k)
		require.NoError(t, err)
		disk, err := p.Disk(0)
		require.NoError(t, err)
		got := make([]byte, 0, len(want[0]))
		buf := make([]byte, 4096+7)
		for {
			n, err := disk.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
		}
		require.True(t, bytes.Equal(want[0], got), "point %d", k)
	}
}
