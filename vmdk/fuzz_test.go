package vmdk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// The seed corpora under testdata/fuzz are small files this package wrote
// (regenerate with STANDBYKIT_WRITE_SEEDS=1 go test -run Seeds ./vmdk).

func FuzzDescriptor(f *testing.F) {
	f.Add([]byte(esxiBase))
	f.Add([]byte(esxiDelta))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescriptor(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		text, err := d.MarshalText()
		if err != nil {
			return // a name or value that cannot be written back
		}
		again, err := ParseDescriptor(text)
		if err != nil {
			t.Fatalf("our own output does not parse: %v\n%s", err, text)
		}
		if again.CID != d.CID || again.ParentCID != d.ParentCID || again.Capacity() != d.Capacity() {
			t.Fatalf("round trip changed the descriptor")
		}
	})
}

// FuzzSparse reads a hosted sparse or streamOptimized file (a packed
// input, see unpackFile) as a monolithic disk, and its embedded
// descriptor.
func FuzzSparse(f *testing.F) {
	for _, s := range seeds(f, "sparse") {
		f.Add(packFile(s))
	}
	// Small hand-laid monolithic sparse files (compactSparse), one with a
	// zero grain.
	f.Add(packFile(compactSparse(300, false, sparseSeedDesc, map[int64]byte{1: 3})))
	f.Add(packFile(compactSparse(300, true, sparseSeedDesc, map[int64]byte{0: 0, 2: 4})))
	f.Fuzz(func(t *testing.T, in []byte) {
		b := unpackFile(in)
		readOrError(t, fstest.MapFS{"disk.vmdk": {Data: b}}, "disk.vmdk")
		if _, err := EmbeddedDescriptor(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("untyped EmbeddedDescriptor error: %v", err)
		}
	})
}

// cowdSeedFlat is the base under FuzzCOWD's deltas, made once: it is
// read-only.
var cowdSeedFlat = bytes.Repeat([]byte{7}, 1<<20)

// FuzzCOWD reads a COWD extent (a packed input, see unpackFile) through a
// chain, and opens it with OpenCOWD, writes into it and opens the result
// again.
func FuzzCOWD(f *testing.F) {
	for _, s := range seeds(f, "cowd") {
		f.Add(packFile(s))
	}
	// An empty delta, and one written in place, both trimmed to their
	// freeSector.
	m := &memFile{}
	c, err := CreateCOWD(m, 1<<20)
	require.NoError(f, err)
	f.Add(packFile(m.b[:c.free*SectorSize]))
	_, err = c.WriteAt(bytes.Repeat([]byte{3}, 3*SectorSize), 69632)
	require.NoError(f, err)
	_, err = c.WriteAt(bytes.Repeat([]byte{4}, SectorSize), 0)
	require.NoError(f, err)
	f.Add(packFile(m.b[:c.free*SectorSize]))
	f.Add(packFile(cowdSample(f)))

	f.Fuzz(func(t *testing.T, in []byte) {
		b := unpackFile(in)
		fsys := fstest.MapFS{
			"sb.vmdk":              {Data: []byte(cowdSeedBase)},
			"sb-flat.vmdk":         {Data: cowdSeedFlat},
			"sb-000001.vmdk":       {Data: []byte(cowdSeedDelta)},
			"sb-000001-delta.vmdk": {Data: b},
		}
		readOrError(t, fsys, "sb-000001.vmdk")
		writeCOWDOrError(t, b)
	})
}

// writeCOWDOrError opens b with OpenCOWD; when it opens, the first and
// last sectors are written and the file must open again holding them.
func writeCOWDOrError(t *testing.T, b []byte) {
	m := &memFile{b: bytes.Clone(b)}
	c, err := OpenCOWD(m, int64(len(b)))
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("untyped OpenCOWD error: %v", err)
		}
		return
	}
	held := c.Allocated()
	buf := make([]byte, 4096)
	if _, err := c.ReadAt(buf, 0); err != nil && err != io.EOF {
		t.Fatalf("reading a checked extent: %v", err)
	}
	sector := bytes.Repeat([]byte{0x5a}, SectorSize)
	last := c.Capacity() - SectorSize
	for _, off := range []int64{0, last} {
		if _, err := c.WriteAt(sector, off); err != nil {
			t.Fatalf("writing at %d: %v", off, err)
		}
	}
	if c.Size() != int64(len(m.b)) {
		t.Fatalf("Size %d, file %d bytes", c.Size(), len(m.b))
	}
	again, err := OpenCOWD(m, int64(len(m.b)))
	if err != nil {
		t.Fatalf("our own writes left a file that does not open: %v", err)
	}
	for _, off := range []int64{0, last} {
		if _, err := again.ReadAt(buf[:SectorSize], off); err != nil || !bytes.Equal(buf[:SectorSize], sector) {
			t.Fatalf("sector at %d not written back (%v)", off, err)
		}
	}
	want := normalize(append(held, Range{Off: 0, Len: SectorSize}, Range{Off: last, Len: SectorSize}))
	if got := again.Allocated(); !slices.Equal(got, want) {
		t.Fatalf("allocated %v after writes, want %v", got, want)
	}
}

const cowdSeedBase = "version=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 2048 VMFS \"sb-flat.vmdk\"\n"
const cowdSeedDelta = "version=1\nCID=00000002\nparentCID=00000001\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"sb.vmdk\"\nRW 2048 VMFSSPARSE \"sb-000001-delta.vmdk\"\n"

func seeds(f *testing.F, kind string) [][]byte {
	dir := filepath.Join("testdata", "seeds", kind)
	if os.Getenv("STANDBYKIT_WRITE_SEEDS") == "1" {
		writeSeeds(f, dir, kind)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(f, err)
	var out [][]byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(f, err)
		out = append(out, b)
	}
	require.NotEmpty(f, out, "no seeds in %s", dir)
	return out
}

// writeSeeds writes tiny valid files: a 1 MiB disk with a few grains.
func writeSeeds(f *testing.F, dir, kind string) {
	require.NoError(f, os.MkdirAll(dir, 0o755))
	disk := make([]byte, 1<<20)
	copy(disk[70000:], "standbykit seed")
	copy(disk[1<<20-600:], bytes.Repeat([]byte{0xee}, 600))
	switch kind {
	case "sparse":
		var b bytes.Buffer
		_, err := WriteStreamOptimized(context.Background(), &b, bytes.NewReader(disk), int64(len(disk)), StreamOptions{})
		require.NoError(f, err)
		require.NoError(f, os.WriteFile(filepath.Join(dir, "stream"), b.Bytes(), 0o644))
	case "cowd":
		parent, err := ParseDescriptor([]byte(cowdSeedBase))
		require.NoError(f, err)
		d, err := NewDelta("sb.vmdk", parent, []Range{{Off: 69632, Len: 1024}, {Off: 1<<20 - 1024, Len: 1024}})
		require.NoError(f, err)
		var b bytes.Buffer
		_, err = d.WriteExtent(context.Background(), &b, bytes.NewReader(disk), nil)
		require.NoError(f, err)
		// Only the meaningful prefix: the padding is zeros.
		require.NoError(f, os.WriteFile(filepath.Join(dir, "delta"), b.Bytes()[:d.free*SectorSize], 0o644))
	}
}
