package ntfs

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/stretchr/testify/require"
)

// encodeRuns encodes data runs (mapping pairs) of one attribute extent.
func encodeRuns(runs []run) []byte {
	var out []byte
	prev := int64(0)
	for _, r := range runs {
		l := minBytes(r.length, false)
		if r.lcn < 0 {
			out = append(out, byte(len(l)))
			out = append(out, l...)
			continue
		}
		d := minBytes(r.lcn-prev, true)
		prev = r.lcn
		out = append(out, byte(len(d)<<4|len(l)))
		out = append(out, l...)
		out = append(out, d...)
	}
	return append(out, 0)
}

// minBytes returns the shortest little-endian encoding of v.
func minBytes(v int64, signed bool) []byte {
	var b []byte
	for {
		b = append(b, byte(v))
		v >>= 8
		last := b[len(b)-1]
		if signed && ((v == 0 && last < 0x80) || (v == -1 && last >= 0x80)) {
			return b
		}
		if !signed && v == 0 {
			return b
		}
	}
}

func align8(n int) int { return (n + 7) &^ 7 }

// TestMFTAttributeList moves the second half of the $MFT's data runs to an
// extension record behind an $ATTRIBUTE_LIST, as Windows does for a very
// fragmented MFT (ntfs-3g's tools cannot be made to), and checks that
// both ntfs-3g and this package still find the files stored past the
// first half.
func TestMFTAttributeList(t *testing.T) {
	requireTools(t, "ntfsls", "ntfsinfo", "ntfsfix")
	out, files, k := mftListImage(t, 60)
	info := string(oracle.Run(t, "ntfsinfo", "-v", "-F", "/$MFT", out))
	require.Contains(t, info, "$ATTRIBUTE_LIST")
	oracle.Run(t, "ntfsfix", "-n", out)

	v2, f2 := openImg(t, out)
	require.Len(t, v2.mft.runs, 2)
	var paths []string
	for _, f := range files {
		paths = append(paths, f.path)
	}
	cat := catAll(t, out, paths)
	beyond := 0
	for _, tf := range files {
		checkFile(t, v2, f2, tf, cat[tf.path])
		f, err := v2.Lookup(tf.path)
		require.NoError(t, err)
		if int64(f.Record())*1024 >= k*4096 {
			beyond++
		}
	}
	require.Positive(t, beyond, "no file lies in the second extent")
	names, err := v2.ReadDir("/")
	require.NoError(t, err)
	require.Equal(t, sorted(ntfsls(t, out, "/")), sorted(names))
}

// mftListImage builds a volume with n files and splits its $MFT's data
// into two extents, the second in extension record 40; it returns the
// image, the files and the number of clusters in the first extent.
func mftListImage(t *testing.T, n int) (string, []testFile, int64) {
	t.Helper()
	imgPath := mkvol(t, 16<<20, 4096)
	var files []testFile
	for i := 0; i < n; i++ {
		files = append(files, testFile{fmt.Sprintf("/f%02d", i), randBytes(int64(i), 100+i*50)})
	}
	putAll(t, imgPath, files, false)
	img, err := os.ReadFile(imgPath)
	require.NoError(t, err)
	v, err := openBytes(img)
	require.NoError(t, err)
	require.Len(t, v.mft.runs, 1, "a fresh volume has a contiguous MFT")
	mftRun := v.mft.runs[0]
	const ext = 40 // a free record in the first half
	k := int64(12) // clusters in the first extent: records 0-47
	require.Greater(t, mftRun.length, k)
	require.Greater(t, k*4096, int64(ext+1)*1024)

	rec0, err := v.readRecordRaw(0)
	require.NoError(t, err)
	require.NoError(t, applyFixups(rec0, "test"))
	parsed, err := v.readRecord(0)
	require.NoError(t, err)
	raw := func(a *attr) []byte {
		n := int(binary.LittleEndian.Uint32(rec0[a.off+4:]))
		return append([]byte(nil), rec0[a.off:a.off+n]...)
	}
	le := binary.LittleEndian
	nextID := le.Uint16(rec0[0x28:])
	seq0 := uint64(le.Uint16(rec0[0x10:]))

	// The two $DATA extents.
	data := parsed.find(atData, "")
	mpOff := int(le.Uint16(rec0[data.off+0x20:]))
	extent := func(low, high, lcn int64, sizes bool) []byte {
		mp := encodeRuns([]run{{vcn: low, lcn: lcn, length: high - low + 1}})
		b := make([]byte, align8(mpOff+len(mp)))
		copy(b, rec0[data.off:data.off+mpOff])
		copy(b[mpOff:], mp)
		le.PutUint32(b[4:], uint32(len(b)))
		le.PutUint64(b[0x10:], uint64(low))
		le.PutUint64(b[0x18:], uint64(high))
		if !sizes {
			clear(b[0x28:0x40])
		}
		return b
	}
	first := extent(0, k-1, mftRun.lcn, true)
	second := extent(k, mftRun.length-1, mftRun.lcn+k, false)
	le.PutUint16(second[0x0E:], 0) // attribute id in the extension record

	// The attribute list.
	type entry struct {
		typ uint32
		vcn int64
		rec uint64
		id  uint16
	}
	var entries []entry
	for _, a := range parsed.attrs {
		if a.typ != atData {
			entries = append(entries, entry{a.typ, 0, 0 | seq0<<48, a.id})
		} else {
			entries = append(entries, entry{atData, 0, seq0 << 48, a.id}, entry{atData, k, ext | 1<<48, 0})
		}
	}
	var list []byte
	for _, e := range entries {
		b := make([]byte, 0x20)
		le.PutUint32(b, e.typ)
		le.PutUint16(b[4:], 0x20)
		b[7] = 0x1A
		le.PutUint64(b[8:], uint64(e.vcn))
		le.PutUint64(b[0x10:], e.rec)
		le.PutUint16(b[0x18:], e.id)
		list = append(list, b...)
	}
	al := make([]byte, align8(0x18+len(list)))
	le.PutUint32(al, atAttributeList)
	le.PutUint32(al[4:], uint32(len(al)))
	le.PutUint16(al[0x0E:], nextID)
	le.PutUint32(al[0x10:], uint32(len(list)))
	le.PutUint16(al[0x14:], 0x18)
	copy(al[0x18:], list)

	// Record 0: SI, AL, the other attributes, the first extent.
	firstAttr := int(le.Uint16(rec0[0x14:]))
	body := []byte{}
	for _, a := range parsed.attrs {
		switch a.typ {
		case atData:
			body = append(body, first...)
		case atStandardInformation:
			body = append(body, raw(a)...)
			body = append(body, al...)
		default:
			body = append(body, raw(a)...)
		}
	}
	body = append(body, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0)
	require.LessOrEqual(t, firstAttr+len(body), 1024)
	new0 := append([]byte(nil), rec0[:firstAttr]...)
	new0 = append(new0, body...)
	new0 = append(new0, make([]byte, 1024-len(new0))...)
	le.PutUint32(new0[0x18:], uint32(firstAttr+len(body)))
	le.PutUint16(new0[0x28:], nextID+1)

	// The extension record.
	recX := make([]byte, 1024)
	copy(recX, rec0[:firstAttr])
	le.PutUint16(recX[0x10:], 1)        // sequence
	le.PutUint16(recX[0x12:], 0)        // links
	le.PutUint16(recX[0x16:], recInUse) // flags
	le.PutUint64(recX[0x20:], seq0<<48) // base: record 0
	le.PutUint16(recX[0x28:], 1)        // next attribute id
	le.PutUint32(recX[0x2C:], ext)      // record number
	copy(recX[firstAttr:], second)
	copy(recX[firstAttr+len(second):], []byte{0xFF, 0xFF, 0xFF, 0xFF})
	le.PutUint32(recX[0x18:], uint32(firstAttr+len(second)+8))

	for num, buf := range map[uint64][]byte{0: new0, ext: recX} {
		protect(t, buf)
		writeRecordRaw(t, v, img, num, buf)
	}
	// Mark the extension record in use in the $MFT's $BITMAP, and fix
	// $MFTMirr's copy of record 0.
	bm := parsed.find(atBitmap, "")
	require.True(t, bm.nonResident)
	img[bm.runs[0].lcn*4096+ext/8] |= 1 << (ext % 8)
	vv, err := openBytes(img)
	require.NoError(t, err)
	mirr, err := vv.Lookup("/$MFTMirr")
	require.NoError(t, err)
	mr, err := mirr.Ranges()
	require.NoError(t, err)
	r0, err := vv.recordRanges(0, 0, 1024)
	require.NoError(t, err)
	copy(img[mr[0].Offset:mr[0].Offset+1024], img[r0[0].Offset:r0[0].Offset+1024])

	out := filepath.Join(t.TempDir(), "mftlist.img")
	require.NoError(t, os.WriteFile(out, img, 0o644))
	return out, files, k
}
