package ntfs

import (
	"bytes"
	"encoding/binary"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var corruptImage struct {
	sync.Mutex
	b []byte
}

// imageWith returns a copy of a 16 MiB volume holding /SYSTEM
// (non-resident), /small.txt (resident) and 40 files in $Extend, built
// once.
func imageWith(t *testing.T) []byte {
	t.Helper()
	requireTools(t)
	corruptImage.Lock()
	defer corruptImage.Unlock()
	if corruptImage.b == nil {
		imgPath := mkvol(t, 16<<20, 4096)
		files := []testFile{{"/SYSTEM", randBytes(1, 300<<10)}, {"/small.txt", []byte("small\n")}}
		for i := 0; i < 40; i++ {
			files = append(files, testFile{"/$Extend/file" + string(rune('A'+i%26)) + string(rune('a'+i/26)), []byte{byte(i)}})
		}
		putAll(t, imgPath, files, false)
		b, err := os.ReadFile(imgPath)
		require.NoError(t, err)
		corruptImage.b = b
	}
	return append([]byte(nil), corruptImage.b...)
}

func openBytes(b []byte) (*Volume, error) {
	return Open(bytes.NewReader(b), int64(len(b)))
}

// rewriteRecord applies mutate to record num of img (with its fixups
// undone) and writes it back with a valid update sequence.
func rewriteRecord(t *testing.T, img []byte, num uint64, mutate func(rec []byte)) {
	t.Helper()
	v, err := openBytes(img)
	require.NoError(t, err)
	buf, err := v.readRecordRaw(num)
	require.NoError(t, err)
	require.NoError(t, applyFixups(buf, "test"))
	mutate(buf)
	protect(t, buf)
	writeRecordRaw(t, v, img, num, buf)
}

// protect undoes applyFixups: it saves the last two bytes of each stride
// in the update sequence array and writes the update sequence number there.
func protect(t *testing.T, buf []byte) {
	t.Helper()
	usaOff, count, err := usaBounds(buf, "test")
	require.NoError(t, err)
	for i := 1; i < count; i++ {
		end := i * 512
		copy(buf[usaOff+2*i:usaOff+2*i+2], buf[end-2:end])
		copy(buf[end-2:end], buf[usaOff:usaOff+2])
	}
}

func writeRecordRaw(t *testing.T, v *Volume, img []byte, num uint64, buf []byte) {
	t.Helper()
	rs, err := v.recordRanges(num, 0, int64(v.recordSize))
	require.NoError(t, err)
	for _, r := range rs {
		copy(img[r.Offset:r.End()], buf[:r.Length])
		buf = buf[r.Length:]
	}
}

// dataAttr returns the header offset of the unnamed $DATA attribute of a
// file's base record.
func dataAttr(t *testing.T, img []byte, path string) (uint64, int) {
	t.Helper()
	v, err := openBytes(img)
	require.NoError(t, err)
	f, err := v.Lookup(path)
	require.NoError(t, err)
	for _, a := range f.attrs {
		if a.typ == atData && a.name == "" {
			require.Equal(t, f.num, a.record)
			return f.num, a.off
		}
	}
	t.Fatalf("%s has no $DATA", path)
	return 0, 0
}

func TestOpenErrors(t *testing.T) {
	img := imageWith(t)
	cp := func() []byte { return append([]byte(nil), img...) }

	_, err := openBytes(make([]byte, 1<<20))
	require.ErrorIs(t, err, ErrNotNTFS)
	_, err = openBytes(img[:100])
	require.ErrorIs(t, err, ErrNotNTFS)

	b := cp()
	copy(b[3:], "-FVE-FS-")
	_, err = openBytes(b)
	require.ErrorIs(t, err, ErrBitLocker)

	for _, m := range []struct {
		off int
		val []byte
		err error
	}{
		{0x0B, []byte{0, 0}, ErrNotNTFS}, // bytes per sector
		{0x0B, []byte{0, 3}, ErrNotNTFS}, // 768 bytes per sector
		{0x0D, []byte{0}, ErrNotNTFS},    // sectors per cluster
		{0x0D, []byte{3}, ErrNotNTFS},    // not a power of two
		{0x0D, []byte{0xE0}, ErrNotNTFS}, // 2^32 sectors per cluster
		{0x40, []byte{0}, ErrNotNTFS},    // MFT record size
		{0x40, []byte{0xFE}, ErrNotNTFS}, // 2^2 = 4 bytes
		{0x44, []byte{0x7F}, ErrNotNTFS}, // huge index records
		{0x30, []byte{0, 0, 0, 0, 0, 0, 0, 1}, ErrCorrupt},
		{0x30, []byte{1, 0, 0, 0, 0, 0, 0, 0}, ErrCorrupt}, // MFT at cluster 1: no FILE record
	} {
		b := cp()
		copy(b[m.off:], m.val)
		_, err := openBytes(b)
		require.ErrorIs(t, err, m.err, "boot sector 0x%x = %x", m.off, m.val)
	}

	// Large clusters: 2^-n encoding, 0xF4 = 2^12 sectors of 512 bytes.
	b = cp()
	b[0x0D] = 0xF4
	b[0x44] = 0xF4 // 4 KiB index records
	if v, err := openBytes(b); err == nil {
		require.Equal(t, int64(2<<20), v.ClusterSize())
	} else {
		require.ErrorIs(t, err, ErrCorrupt) // the MFT is now elsewhere
	}

	// Truncated images.
	for _, n := range []int{4096, 20 << 10, 100 << 10, 1 << 20, len(img) / 2} {
		v, err := openBytes(img[:n])
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt, "truncated to %d", n)
			continue
		}
		f, err := v.Lookup("/SYSTEM")
		if err == nil {
			_, err = f.ReadAll()
		}
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d", n)
	}
}

func TestCorruptRecords(t *testing.T) {
	img := imageWith(t)
	v, err := openBytes(img)
	require.NoError(t, err)
	small, err := v.Lookup("/small.txt")
	require.NoError(t, err)
	cp := func() []byte { return append([]byte(nil), img...) }
	rec := func(b []byte, num uint64) int64 {
		rs, err := v.recordRanges(num, 0, int64(v.recordSize))
		require.NoError(t, err)
		return rs[0].Offset
	}

	// Flipped update sequence slot at the end of the first stride.
	b := cp()
	b[rec(b, small.num)+510] ^= 0xFF
	v2, err := openBytes(b)
	require.NoError(t, err)
	_, err = v2.Lookup("/small.txt")
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = v2.Lookup("/SYSTEM")
	require.NoError(t, err, "other files are still readable")

	// The same in record 0: Open fails.
	b = cp()
	b[rec(b, 0)+1022] ^= 0x01
	_, err = openBytes(b)
	require.ErrorIs(t, err, ErrCorrupt)

	// Bad update sequence array count.
	b = cp()
	b[rec(b, small.num)+6] = 9
	v2, _ = openBytes(b)
	_, err = v2.Lookup("/small.txt")
	require.ErrorIs(t, err, ErrCorrupt)

	// Bad signature.
	b = cp()
	copy(b[rec(b, small.num):], "BAAD")
	v2, _ = openBytes(b)
	_, err = v2.Lookup("/small.txt")
	require.ErrorIs(t, err, ErrCorrupt)

	// A flipped fixup in an INDX block of $Extend.
	ext, err := v.Lookup("/$Extend")
	require.NoError(t, err)
	ix, err := ext.openIndex()
	require.NoError(t, err)
	require.NotNil(t, ix.alloc)
	rs, err := ix.alloc.physical(0, ix.blockSize)
	require.NoError(t, err)
	b = cp()
	b[rs[0].Offset+1022] ^= 0x01
	v2, _ = openBytes(b)
	_, err = v2.ReadDir("/$Extend")
	require.ErrorIs(t, err, ErrCorrupt)

	// Bad attribute lengths.
	num, off := dataAttr(t, img, "/SYSTEM")
	for _, mut := range []func(r []byte){
		func(r []byte) { binary.LittleEndian.PutUint32(r[off+4:], 0) },
		func(r []byte) { binary.LittleEndian.PutUint32(r[off+4:], 0xFFF8) },
		func(r []byte) { binary.LittleEndian.PutUint32(r[0x18:], 0x10000) }, // bytes in use
		func(r []byte) { binary.LittleEndian.PutUint16(r[0x14:], 0x3F8) },   // first attribute
	} {
		b := cp()
		rewriteRecord(t, b, num, mut)
		v2, err := openBytes(b)
		require.NoError(t, err)
		f, err := v2.Lookup("/SYSTEM")
		if err == nil {
			_, err = f.ReadAll()
		}
		require.ErrorIs(t, err, ErrCorrupt)
	}
}

func TestBadRuns(t *testing.T) {
	img := imageWith(t)
	num, off := dataAttr(t, img, "/SYSTEM")
	mp := func(r []byte) int { return off + int(binary.LittleEndian.Uint16(r[off+0x20:])) }
	for name, mut := range map[string]func(r []byte){
		"length size 0":   func(r []byte) { r[mp(r)] = 0x30 },
		"length size 9":   func(r []byte) { r[mp(r)] = 0x39 },
		"offset size 9":   func(r []byte) { r[mp(r)] = 0x91 },
		"beyond volume":   func(r []byte) { r[mp(r)] = 0x81; copy(r[mp(r)+1:], []byte{75, 0, 0, 0, 0, 0, 0, 0, 0x40}) },
		"negative LCN":    func(r []byte) { r[mp(r)] = 0x11; copy(r[mp(r)+1:], []byte{75, 0x80, 0}) },
		"short":           func(r []byte) { r[mp(r)] = 0x11; copy(r[mp(r)+1:], []byte{5, 1, 0}) },
		"too long":        func(r []byte) { r[mp(r)] = 0x12; copy(r[mp(r)+1:], []byte{0xFF, 0xFF, 1, 0}) },
		"mapping offset":  func(r []byte) { binary.LittleEndian.PutUint16(r[off+0x20:], 0x3F0) },
		"zero length run": func(r []byte) { r[mp(r)] = 0x11; copy(r[mp(r)+1:], []byte{0, 1, 0}) },
		"sizes":           func(r []byte) { binary.LittleEndian.PutUint64(r[off+0x30:], 1<<62) },
		"low VCN":         func(r []byte) { binary.LittleEndian.PutUint64(r[off+0x10:], 5) },
	} {
		b := append([]byte(nil), img...)
		rewriteRecord(t, b, num, mut)
		v, err := openBytes(b)
		require.NoError(t, err)
		f, err := v.Lookup("/SYSTEM")
		if err == nil {
			_, err = f.ReadAll()
		}
		require.ErrorIs(t, err, ErrCorrupt, name)
	}
}

func TestUnsupported(t *testing.T) {
	img := imageWith(t)
	num, off := dataAttr(t, img, "/SYSTEM")
	flags := func(f uint16) func(r []byte) {
		return func(r []byte) { binary.LittleEndian.PutUint16(r[off+0x0C:], f) }
	}
	for name, c := range map[string]struct {
		mut     func(r []byte)
		readAll error // nil: ReadAll works
		ranges  error
	}{
		"compressed": {flags(0x0001), ErrUnsupported, ErrUnsupported},
		"encrypted":  {flags(0x4000), ErrUnsupported, ErrUnsupported},
		"sparse":     {flags(0x8000), nil, ErrUnsupported},
		"sparse run": {func(r []byte) {
			mp := off + int(binary.LittleEndian.Uint16(r[off+0x20:]))
			copy(r[mp:], []byte{0x01, 75, 0}) // 75 clusters, no LCN: a hole
		}, nil, ErrUnsupported},
		"uninitialized": {func(r []byte) { binary.LittleEndian.PutUint64(r[off+0x38:], 1000) }, nil, ErrUnsupported},
	} {
		b := append([]byte(nil), img...)
		rewriteRecord(t, b, num, c.mut)
		v, err := openBytes(b)
		require.NoError(t, err)
		f, err := v.Lookup("/SYSTEM")
		require.NoError(t, err)
		data, err := f.ReadAll()
		if c.readAll == nil {
			require.NoError(t, err, name)
			require.Len(t, data, 300<<10)
			switch name {
			case "sparse run":
				require.Equal(t, make([]byte, 300<<10), data)
			case "uninitialized":
				require.Equal(t, randBytes(1, 1000), data[:1000])
				require.Equal(t, make([]byte, 300<<10-1000), data[1000:])
			}
		} else {
			require.ErrorIs(t, err, c.readAll, name)
		}
		_, err = f.Ranges()
		require.ErrorIs(t, err, c.ranges, name)
		_, err = f.PatchAt(0, []byte{1})
		if name == "uninitialized" || name == "sparse" {
			continue
		}
		require.Error(t, err, name)
	}
}
