package vmdk

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// mixedDisk returns size bytes of disk-like content: zero stretches,
// text-like compressible runs and random runs, with run edges that do not
// fall on grain boundaries.
func mixedDisk(r *rand.Rand, size int64) []byte {
	b := make([]byte, size)
	words := []string{"standby ", "kit ", "boot ", "point ", "\n", "0000 ", "ESXi ", "snapshot "}
	for off := int64(0); off < size; {
		n := min(size-off, int64(r.IntN(300<<10)+1))
		switch r.IntN(3) {
		case 0: // zeros
		case 1:
			for i := off; i < off+n; {
				w := words[r.IntN(len(words))]
				i += int64(copy(b[i:off+n], w))
			}
		case 2:
			for i := off; i < off+n; i++ {
				b[i] = byte(r.Uint32())
			}
		}
		off += n
	}
	return b
}

// writeFile writes b to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// writeStream writes disk as a streamOptimized file dir/name.
func writeStream(t testing.TB, dir, name string, disk []byte, o StreamOptions) StreamResult {
	t.Helper()
	var out bytes.Buffer
	o.ExtentName = name
	res, err := WriteStreamOptimized(context.Background(), &out, bytes.NewReader(disk), int64(len(disk)), o)
	require.NoError(t, err)
	require.Equal(t, int64(out.Len()), res.Size)
	writeFile(t, dir, name, out.Bytes())
	return res
}

// writeFlatBase writes disk as a vmfs base: name.vmdk and name-flat.vmdk.
func writeFlatBase(t testing.TB, dir, name string, disk []byte) *Descriptor {
	t.Helper()
	flat := FlatName(name)
	d := BaseDescriptor(CreateVMFS, ExtentVMFS, flat, int64(len(disk)), "")
	text, err := d.MarshalText()
	require.NoError(t, err)
	writeFile(t, dir, flat, disk)
	writeFile(t, dir, name, text)
	return d
}

// writeDelta writes a delta over parent holding ranges of disk and
// returns it.
func writeDelta(t testing.TB, dir, parentName string, parent *Descriptor, disk []byte, ranges []Range) *Delta {
	t.Helper()
	d, err := NewDelta(parentName, parent, ranges)
	require.NoError(t, err)
	var ext bytes.Buffer
	n, err := d.WriteExtent(context.Background(), &ext, bytes.NewReader(disk), nil)
	require.NoError(t, err)
	require.Equal(t, d.ExtentSize, n)
	require.Equal(t, d.ExtentSize, int64(ext.Len()))
	writeFile(t, dir, d.ExtentName, ext.Bytes())
	writeFile(t, dir, d.DescriptorName, d.DescriptorText())
	return d
}

// readChain reads the whole disk through OpenChain.
func readChain(t testing.TB, dir, name string) []byte {
	t.Helper()
	c, err := OpenChain(os.DirFS(dir), name)
	require.NoError(t, err)
	defer c.Close()
	b := make([]byte, c.Size())
	n, err := c.ReadAt(b, 0)
	require.NoError(t, err)
	require.Equal(t, len(b), n)
	return b
}

// randomChanges picks sector-aligned ranges of a disk: scattered single
// sectors, runs across 2 MiB region edges, the last sector.
func randomChanges(r *rand.Rand, size int64) []Range {
	var set []Range
	add := func(off, n int64) {
		off = off / SectorSize * SectorSize
		n = (n + SectorSize - 1) / SectorSize * SectorSize
		if off+n > size {
			n = size - off
		}
		if n > 0 {
			set = append(set, Range{Off: off, Len: n})
		}
	}
	for range r.IntN(30) + 1 {
		add(r.Int64N(size), SectorSize)
	}
	for range r.IntN(5) + 1 {
		add(r.Int64N(size), r.Int64N(512<<10)+1)
	}
	edge := (r.Int64N(size/cowdRegion) + 1) * cowdRegion
	add(edge-64<<10, 128<<10)
	add(size-SectorSize, SectorSize)
	return normalize(set)
}

// normalize sorts and merges ranges.
func normalize(rs []Range) []Range {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Off < rs[j-1].Off; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
	var out []Range
	for _, r := range rs {
		if n := len(out); n > 0 && r.Off <= out[n-1].End() {
			out[n-1].Len = max(out[n-1].End(), r.End()) - out[n-1].Off
			continue
		}
		out = append(out, r)
	}
	return out
}
