package lvm

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// run is a hand-computed piece of a linear LV: n extents from LV extent
// lvExt stored on pv from physical extent pe.
type run struct {
	lvExt, n int64
	pv       string
	pe       int64
}

// placeLinear writes payload onto the PV images the way the runs say.
func placeLinear(imgs map[string][]byte, payload []byte, runs []run) {
	for _, r := range runs {
		dst := imgs[r.pv][tPEStart+r.pe*tExtent:]
		copy(dst[:r.n*tExtent], payload[r.lvExt*tExtent:(r.lvExt+r.n)*tExtent])
	}
}

// placeStriped deals payload out chunk by chunk, round robin, keeping a
// write cursor per stripe (an independent formulation of dm-stripe).
func placeStriped(imgs map[string][]byte, payload []byte, stripes []Stripe, chunk int) {
	cursor := make([]int64, len(stripes))
	for off := 0; off < len(payload); off += chunk {
		i := (off / chunk) % len(stripes)
		st := stripes[i]
		dst := tPEStart + st.StartPE*tExtent + cursor[i]
		copy(imgs[st.PV][dst:dst+int64(chunk)], payload[off:off+chunk])
		cursor[i] += int64(chunk)
	}
}

func randBytes(seed uint64, n int64) []byte {
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestLVRoundTrip writes an ext4-sized random payload for each mappable
// LV at hand-computed PV offsets, then reads it back through ReadPV, the
// parsed metadata and the LV readers.
func TestLVRoundTrip(t *testing.T) {
	pv0, pv1 := testPVs(t)
	imgs := map[string][]byte{"pv0": pv0, "pv1": pv1}
	payload := map[string][]byte{
		"swap":       randBytes(1, 5*tExtent),
		"root":       randBytes(2, 20*tExtent),
		"data":       randBytes(3, 8*tExtent),
		"pool_tdata": randBytes(4, 4*tExtent),
	}
	placeLinear(imgs, payload["swap"], []run{{0, 5, "pv0", 0}})
	placeLinear(imgs, payload["root"], []run{{0, 10, "pv0", 5}, {10, 4, "pv0", 15}, {14, 6, "pv1", 30}})
	placeStriped(imgs, payload["data"], []Stripe{{"pv0", 30}, {"pv1", 0}}, tChunk)
	placeLinear(imgs, payload["pool_tdata"], []run{{0, 4, "pv1", 10}})

	p0, err := ReadPV(bytes.NewReader(pv0), int64(len(pv0)))
	require.NoError(t, err)
	p1, err := ReadPV(bytes.NewReader(pv1), int64(len(pv1)))
	require.NoError(t, err)
	assert.Equal(t, dashed(tUUID0), p0.UUID)
	assert.Equal(t, dashed(tUUID1), p1.UUID)
	assert.Equal(t, int64(1), p0.LabelSector)
	assert.Equal(t, []Area{{tPEStart, 0}}, p0.DataAreas)
	assert.Equal(t, []Area{{4096, tPEStart - 4096}}, p0.MetadataAreas)
	assert.Equal(t, uint32(2), p0.ExtVersion)
	assert.Equal(t, uint32(1), p0.ExtFlags)
	require.NotNil(t, p0.VG)
	assert.Equal(t, p0.VG, p1.VG)
	assert.Equal(t, testMetadata(12), string(p0.Metadata))

	vg := p0.VG
	assert.Equal(t, "rhel", vg.Name)
	assert.Equal(t, int64(12), vg.Seqno)
	assert.Equal(t, int64(tExtent), vg.ExtentSize)
	require.Len(t, vg.PVs, 2)
	assert.Equal(t, PVInfo{Name: "pv1", UUID: dashed(tUUID1), Device: "/dev/sdb1", Status: []string{"ALLOCATABLE"},
		DevSize: tPVSize, PEStart: tPEStart, PECount: tPECount}, vg.PVs[1])
	root, err := vg.LV("root")
	require.NoError(t, err)
	assert.Equal(t, int64(20*tExtent), root.Size)
	assert.True(t, root.Visible())
	tdata, _ := vg.LV("pool_tdata")
	assert.False(t, tdata.Visible())
	for i, s := range root.Segments { // sorted although listed out of order
		assert.Equal(t, []int64{0, 10, 14}[i], s.StartExtent)
	}

	readers := map[string]io.ReaderAt{
		p0.UUID:                  bytes.NewReader(pv0), // dashed
		normUUID(p1.UUID):        bytes.NewReader(pv1), // bare
		"00000000000000000000XX": bytes.NewReader(nil), // not in this VG: ignored
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for name, want := range payload {
		r, err := vg.Open(name, readers)
		require.NoError(t, err, name)
		require.Equal(t, int64(len(want)), r.Size(), name)
		got := make([]byte, len(want))
		n, err := r.ReadAt(got, 0)
		require.NoError(t, err, name)
		require.Equal(t, len(want), n)
		require.True(t, bytes.Equal(want, got), "%s: content differs", name)
		for range 200 {
			off := rng.Int64N(int64(len(want)))
			l := rng.Int64N(3*tExtent) + 1
			buf := make([]byte, l)
			n, err := r.ReadAt(buf, off)
			end := min(off+l, int64(len(want)))
			if off+l > int64(len(want)) {
				require.ErrorIs(t, err, io.EOF)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, int(end-off), n)
			require.True(t, bytes.Equal(want[off:end], buf[:n]), "%s at %d+%d", name, off, l)
		}
	}

	// ToPV across the segment boundaries of root: 0-9 on pv0 from
	// extent 5, 10-13 on pv0 from 15 (so one run of 14 extents), 14-19
	// on pv1 from 30.
	for _, c := range []struct {
		lv      string
		off     int64
		pv      string
		pvOff   int64
		contig  int64
		wantErr error
	}{
		{"root", 0, "pv0", tPEStart + 5*tExtent, 14 * tExtent, nil},
		{"root", 10*tExtent - 1, "pv0", tPEStart + 15*tExtent - 1, 4*tExtent + 1, nil},
		{"root", 10 * tExtent, "pv0", tPEStart + 15*tExtent, 4 * tExtent, nil},
		{"root", 14*tExtent - 1, "pv0", tPEStart + 19*tExtent - 1, 1, nil},
		{"root", 14 * tExtent, "pv1", tPEStart + 30*tExtent, 6 * tExtent, nil},
		{"root", 20*tExtent - 1, "pv1", tPEStart + 36*tExtent - 1, 1, nil},
		{"root", 20 * tExtent, "", 0, 0, ErrNotFound},
		{"root", -1, "", 0, 0, ErrNotFound},
		{"swap", 4096, "pv0", tPEStart + 4096, 5*tExtent - 4096, nil},
		// data: 8 KiB chunks alternate pv0 (from extent 30) and pv1 (from 0)
		{"data", 0, "pv0", tPEStart + 30*tExtent, tChunk, nil},
		{"data", tChunk, "pv1", tPEStart, tChunk, nil},
		{"data", 2*tChunk + 100, "pv0", tPEStart + 30*tExtent + tChunk + 100, tChunk - 100, nil},
		{"data", 8*tExtent - 1, "pv1", tPEStart + 4*tExtent - 1, 1, nil},
		{"thinvol", 0, "", 0, 0, ErrUnsupported},
		{"pool", 0, "", 0, 0, ErrUnsupported},
		{"nosuch", 0, "", 0, 0, ErrNotFound},
	} {
		pv, off, n, err := vg.ToPV(c.lv, c.off)
		if c.wantErr != nil {
			assert.ErrorIs(t, err, c.wantErr, "%s@%d", c.lv, c.off)
			continue
		}
		require.NoError(t, err, "%s@%d", c.lv, c.off)
		assert.Equal(t, []any{c.pv, c.pvOff, c.contig}, []any{pv, off, n}, "%s@%d", c.lv, c.off)
		// the bytes there are the LV's
		assert.Equal(t, payload[c.lv][c.off], imgs[pv][off], "%s@%d", c.lv, c.off)
	}

	m, err := vg.Map("root")
	require.NoError(t, err)
	assert.Equal(t, []Extent{
		{0, "pv0", tPEStart + 5*tExtent, 14 * tExtent},
		{14 * tExtent, "pv1", tPEStart + 30*tExtent, 6 * tExtent},
	}, m)
	m, err = vg.Map("data")
	require.NoError(t, err)
	require.Len(t, m, 8*tExtent/tChunk)
	assert.Equal(t, Extent{3 * tChunk, "pv1", tPEStart + tChunk, tChunk}, m[3])
	var total int64
	for _, e := range m {
		total += e.Length
	}
	assert.Equal(t, int64(8*tExtent), total)

	_, err = vg.Map("thinvol")
	assert.ErrorIs(t, err, ErrUnsupported)
	assert.Contains(t, err.Error(), "thin")
	_, err = vg.Open("pool", readers)
	assert.ErrorIs(t, err, ErrUnsupported)
	assert.Contains(t, err.Error(), "thin-pool")

	// Only the PVs an LV uses are needed.
	_, err = vg.Open("swap", map[string]io.ReaderAt{"pv0": bytes.NewReader(pv0)})
	assert.NoError(t, err)
	_, err = vg.Open("root", map[string]io.ReaderAt{"pv0": bytes.NewReader(pv0)})
	assert.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), dashed(tUUID1))
	_, err = vg.Open("nosuch", readers)
	assert.ErrorIs(t, err, ErrNotFound)

	p, err := vg.PV(normUUID(dashed(tUUID1)))
	require.NoError(t, err)
	assert.Equal(t, "pv1", p.Name)
	_, err = vg.PV("pv9")
	assert.ErrorIs(t, err, ErrNotFound)
}

// A short PV reader surfaces as an error, not as zeros.
func TestLVReaderShortPV(t *testing.T) {
	pv0, pv1 := testPVs(t)
	p0, err := ReadPV(bytes.NewReader(pv0), int64(len(pv0)))
	require.NoError(t, err)
	r, err := p0.VG.Open("root", map[string]io.ReaderAt{"pv0": bytes.NewReader(pv0), "pv1": bytes.NewReader(pv1[:tPEStart+31*tExtent])})
	require.NoError(t, err)
	buf := make([]byte, 3*tExtent)
	n, err := r.ReadAt(buf, 13*tExtent)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Equal(t, 2*tExtent, n)
	_, err = r.ReadAt(buf, -1)
	assert.Error(t, err)
}

func TestMetadataWraparound(t *testing.T) {
	text := testMetadata(5)
	const mdaSize = 16 << 10
	for _, off := range []int64{512, mdaSize - int64(len(text)) - 1, mdaSize - int64(len(text)), mdaSize - 1000, mdaSize - 1} {
		img := buildPV(t, imgSpec{UUID: tUUID0, Size: 64 << 10, LabelSector: 1, MDASize: mdaSize, PEStart: 32 << 10, Text: text, TextOffset: off})
		pv, err := ReadPV(bytes.NewReader(img), int64(len(img)))
		require.NoError(t, err, "offset %d", off)
		assert.Equal(t, text, string(pv.Metadata), "offset %d", off)
		assert.Equal(t, off, pv.MDAs[0].Locations[0].Offset)
		if off+int64(len(text)) > mdaSize { // wrapped: not on disk in one piece
			assert.False(t, bytes.Contains(img, []byte(text)), "offset %d", off)
		}
	}
}

// TestRealMetadata parses real LVM2 metadata texts:
//
//   - testdata/xenserver-testvg.txt and xenserver-testvg-wrapped.txt are
//     the on-disk metadata texts (LVM2 2.03.17) published as real_config
//     and wrapped_config in github.com/xenserver/host-installer
//     test/test_shrinklvm.py (commit 9bffd2e), read there from the
//     test/disk.img.gz and test/disk-wrapped.img.gz images of a PV
//     written by LVM. Their raw_locn in those images: offset 73216, size
//     2073 (the text and its NUL), checksum 0x5c9fbe80; and offset
//     1043456, size 2386, checksum 0xf548b46e, in a 1044480-byte area at
//     4096, so the second text wraps after 1024 bytes.
//   - testdata/redhat-myvg.vg is the sample metadata of the Red Hat
//     Enterprise Linux 5 "LVM Administrator's Guide", appendix D.3
//     (whitespace normalized to tabs).
func TestRealMetadata(t *testing.T) {
	real := readTestdata(t, "xenserver-testvg.txt")
	wrapped := readTestdata(t, "xenserver-testvg-wrapped.txt")
	assert.Equal(t, uint32(0x5c9fbe80), calcCRC(initialCRC, append(real, 0)))
	assert.Equal(t, uint32(0xf548b46e), calcCRC(initialCRC, append(wrapped, 0)))

	// The same layout as the real images: the wrapped text starts 1024
	// bytes before the end of the area.
	img := buildPV(t, imgSpec{UUID: "HS9GnKdVQFUuceDKrjEyYLvozbJ0qG6n", Size: 1 << 20, LabelSector: 1,
		MDASize: 1044480, PEStart: 1 << 20, Text: string(wrapped), TextOffset: 1043456})
	pv, err := ReadPV(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	assert.Equal(t, RawLocation{Offset: 1043456, Size: 2386, Checksum: 0xf548b46e}, pv.MDAs[0].Locations[0])
	assert.Equal(t, string(wrapped), string(pv.Metadata))
	vg := pv.VG
	assert.Equal(t, "testvg", vg.Name)
	assert.Equal(t, "zk0Ftr-9oWM-28V1-H9tN-kfTR-CdaA-9D5gD0", vg.UUID)
	assert.Equal(t, int64(406), vg.Seqno)
	assert.Equal(t, int64(4<<20), vg.ExtentSize)
	assert.Equal(t, []PVInfo{{Name: "pv0", UUID: pv.UUID, Device: "/dev/xvdb4", Status: []string{"ALLOCATABLE"},
		DevSize: 1 << 30, PEStart: 1 << 20, PECount: 255}}, vg.PVs)
	var names []string
	for _, l := range vg.LVs {
		names = append(names, l.Name)
	}
	assert.Equal(t, []string{"testlv3", "testlv4", "testlv9", "testlv5", "testlvtmp"}, names)
	// The upstream test's expectations: testlv5 is extents 10-49 then
	// 220-229 of pv0.
	m, err := vg.Map("testlv5")
	require.NoError(t, err)
	assert.Equal(t, []Extent{{0, "pv0", 1<<20 + 10<<22, 40 << 22}, {40 << 22, "pv0", 1<<20 + 220<<22, 10 << 22}}, m)

	vg2, err := ParseMetadata(real)
	require.NoError(t, err)
	assert.Equal(t, int64(27), vg2.Seqno)
	assert.Len(t, vg2.LVs, 4)

	rh, err := ParseMetadata(readTestdata(t, "redhat-myvg.vg"))
	require.NoError(t, err)
	assert.Equal(t, "myvg", rh.Name)
	assert.Equal(t, int64(4<<20), rh.ExtentSize)
	require.Len(t, rh.PVs, 4)
	assert.Equal(t, "hGlUwi-zsBg-39FF-do88-pHxY-8XA2-9WKIiA", rh.PVs[3].UUID)
	assert.Equal(t, int64(384*512), rh.PVs[3].PEStart)
	lv, err := rh.LV("mylv")
	require.NoError(t, err)
	assert.Equal(t, int64(10<<30), lv.Size)
	assert.Equal(t, []string{"READ", "WRITE", "VISIBLE"}, lv.Status)
	pvName, off, n, err := rh.ToPV("mylv", 5<<30)
	require.NoError(t, err)
	assert.Equal(t, []any{"pv1", int64(384 * 512), int64(5 << 30)}, []any{pvName, off, n})
	pvName, off, n, err = rh.ToPV("mylv", 5<<30-1)
	require.NoError(t, err)
	assert.Equal(t, []any{"pv0", int64(384*512 + 5<<30 - 1), int64(1)}, []any{pvName, off, n})
}

// TestLabelCRCReal checks the label checksum against a label sector
// written by pvcreate, published as a hexdump at
// https://pastebin.com/bvB6JYcu (the sector is zero past 0x90).
func TestLabelCRCReal(t *testing.T) {
	sec := make([]byte, 512)
	copy(sec, unhex(t, `
		4c41 4245 4c4f 4e45 0100 0000 0000 0000
		2936 2c03 2000 0000 4c56 4d32 2030 3031
		7433 3764 4344 535a 3035 4151 7354 6c65
		646c 4252 5575 3530 4a74 4931 7533 6e42
		0000 700e 5400 0000 0000 1000 0000 0000
		0000 0000 0000 0000 0000 0000 0000 0000
		0000 0000 0000 0000 0010 0000 0000 0000
		00f0 0f00 0000 0000 0000 0000 0000 0000
		0000 0000 0000 0000 0100 0000 0000 0000`))
	assert.Equal(t, uint32(0x032c3629), calcCRC(initialCRC, sec[20:]))

	// As the second sector of a device, it reads as far as the metadata
	// area, which this image does not have.
	img := make([]byte, 8192)
	copy(img[512:], sec)
	_, err := ReadPV(bytes.NewReader(img), int64(len(img)))
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "metadata area")
	var pv PV
	require.NoError(t, pv.parseHeader(sec))
	assert.Equal(t, "t37dCD-SZ05-AQsT-ledl-BRUu-50Jt-I1u3nB", pv.UUID)
	assert.Equal(t, int64(0x540e700000), pv.DeviceSize)
	assert.Equal(t, []Area{{1 << 20, 0}}, pv.DataAreas)
	assert.Equal(t, []Area{{4096, 1044480}}, pv.MetadataAreas)
	assert.Equal(t, uint32(1), pv.ExtVersion)
}

// bitCRC is LVM2's checksum computed bit by bit, as a reference for the
// table-driven calcCRC.
func bitCRC(crc uint32, b []byte) uint32 {
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xedb88320
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

func TestCRCReference(t *testing.T) {
	for i := range 50 {
		b := randBytes(uint64(i), int64(i*37))
		assert.Equal(t, bitCRC(initialCRC, b), calcCRC(initialCRC, b))
		// checksums continue across pieces, as for a wrapped text
		k := len(b) / 3
		assert.Equal(t, calcCRC(initialCRC, b), calcCRC(calcCRC(initialCRC, b[:k]), b[k:]))
	}
}

func TestPVVariants(t *testing.T) {
	text := testMetadata(3)
	base := imgSpec{UUID: tUUID0, Size: 64 << 10, LabelSector: 1, MDASize: 16 << 10, PEStart: 32 << 10, Text: text}

	for _, sec := range []int{0, 2, 3} {
		s := base
		s.LabelSector = sec
		pv, err := ReadPV(bytes.NewReader(buildPV(t, s)), s.Size)
		require.NoError(t, err, "sector %d", sec)
		assert.Equal(t, int64(sec), pv.LabelSector)
	}

	s := base
	s.NoExt = true
	pv, err := ReadPV(bytes.NewReader(buildPV(t, s)), s.Size)
	require.NoError(t, err)
	assert.Equal(t, uint32(0), pv.ExtVersion)
	assert.NotNil(t, pv.VG)

	// An orphan PV (pvcreate without vgcreate) has no metadata text.
	s = base
	s.Text = ""
	pv, err = ReadPV(bytes.NewReader(buildPV(t, s)), s.Size)
	require.NoError(t, err)
	assert.Nil(t, pv.VG)
	assert.Nil(t, pv.Metadata)
	require.Len(t, pv.MDAs, 1)
	assert.Empty(t, pv.MDAs[0].Locations)

	// Ignored metadata areas are not read.
	s = base
	s.Flags = RawLocnIgnored
	pv, err = ReadPV(bytes.NewReader(buildPV(t, s)), s.Size)
	require.NoError(t, err)
	assert.Nil(t, pv.VG)

	// Two areas: the higher seqno wins, and a damaged one is tolerated.
	s = base
	s.SecondMDA = true
	s.SecondText = testMetadata(4)
	img := buildPV(t, s)
	pv, err = ReadPV(bytes.NewReader(img), s.Size)
	require.NoError(t, err)
	assert.Len(t, pv.MDAs, 2)
	assert.Equal(t, int64(4), pv.VG.Seqno)
	img[s.Size-s.MDASize+600] ^= 1 // second text
	pv, err = ReadPV(bytes.NewReader(img), s.Size)
	require.NoError(t, err)
	assert.Equal(t, int64(3), pv.VG.Seqno)
	img[4096+600] ^= 1 // first text too
	_, err = ReadPV(bytes.NewReader(img), s.Size)
	assert.ErrorIs(t, err, ErrCorrupt)
}

func TestCorrupt(t *testing.T) {
	base := imgSpec{UUID: tUUID0, Size: 64 << 10, LabelSector: 1, MDASize: 16 << 10, PEStart: 32 << 10, Text: testMetadata(3)}
	good := buildPV(t, base)
	read := func(img []byte) error {
		_, err := ReadPV(bytes.NewReader(img), int64(len(img)))
		return err
	}
	require.NoError(t, read(good))
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	fixLabel := func(b []byte) {
		binaryPut32(b[512+16:], calcCRC(initialCRC, b[512+20:1024]))
	}
	fixMDA := func(b []byte) {
		binaryPut32(b[4096:], calcCRC(initialCRC, b[4096+4:4096+512]))
	}
	for _, c := range []struct {
		name string
		img  []byte
		want error
		msg  string
	}{
		{"label crc", mutate(func(b []byte) { b[512+40] ^= 1 }), ErrCorrupt, "label checksum"},
		{"label sector", mutate(func(b []byte) { b[512+8] = 2; fixLabel(b) }), ErrCorrupt, "claims sector"},
		{"label type", mutate(func(b []byte) { copy(b[512+24:], "LVM3 001"); fixLabel(b) }), ErrUnsupported, "LVM3"},
		{"pv header offset", mutate(func(b []byte) { b[512+20] = 0xf0; b[512+21] = 1; fixLabel(b) }), ErrCorrupt, "PV header offset"},
		{"area list unterminated", mutate(func(b []byte) {
			for p := 512 + 32 + 40; p < 1024; p += 8 {
				binaryPut32(b[p:], 1)
			}
			fixLabel(b)
		}), ErrCorrupt, "unterminated"},
		{"mda crc", mutate(func(b []byte) { b[4096+44] ^= 1 }), ErrCorrupt, "header checksum"},
		{"mda magic", mutate(func(b []byte) { b[4096+5] = 'X'; fixMDA(b) }), ErrCorrupt, "no metadata area header"},
		{"mda version", mutate(func(b []byte) { b[4096+20] = 2; fixMDA(b) }), ErrUnsupported, "version 2"},
		{"mda start", mutate(func(b []byte) { b[4096+25] = 0x20; fixMDA(b) }), ErrCorrupt, "PV header"},
		{"mda size", mutate(func(b []byte) { b[4096+34] = 0x10; fixMDA(b) }), ErrCorrupt, "header size"},
		{"text crc", mutate(func(b []byte) { b[4096+512+100] ^= 0x20 }), ErrCorrupt, "text checksum"},
		{"text offset", mutate(func(b []byte) { b[4096+40] = 0; b[4096+41] = 0x80; fixMDA(b) }), ErrCorrupt, "metadata text at"},
		{"truncated", good[:8192], ErrCorrupt, "metadata area"},
		{"zeros", make([]byte, 1<<16), ErrNotLVM, ""},
		{"garbage", randBytes(5, 1<<16), ErrNotLVM, ""},
		{"short", []byte("LABELONE"), ErrNotLVM, ""},
		{"empty", nil, ErrNotLVM, ""},
	} {
		err := read(c.img)
		assert.ErrorIs(t, err, c.want, c.name)
		if err != nil && c.msg != "" {
			assert.Contains(t, err.Error(), c.msg, c.name)
		}
	}

	// A text that checks out but does not parse is corrupt too.
	s := base
	s.Text = "vg { extent_size = 8 physical_volumes { pv0 { id = \"x\" pe_start = 1 pe_count = 1 } } logical_volumes { lv { segment1 { start_extent = 0 extent_count = 1 type = \"striped\" stripe_count = 1 stripes = [ \"pv1\", 0 ] } } } }"
	err := read(buildPV(t, s))
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "unknown PV")
}

// failingReader fails every read: I/O errors are passed on, not called
// corruption.
type failingReader struct{}

var errDisk = errors.New("disk on fire")

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errDisk }

func TestReadError(t *testing.T) {
	_, err := ReadPV(failingReader{}, 1<<20)
	assert.ErrorIs(t, err, errDisk)
	assert.NotErrorIs(t, err, ErrCorrupt)
}

func TestParseMetadataErrors(t *testing.T) {
	const pvs = `physical_volumes { pv0 { id = "a" pe_start = 2048 pe_count = 10 } pv1 { id = "b" pe_start = 2048 pe_count = 10 } }`
	seg := func(body string) string {
		return `vg { extent_size = 8192 ` + pvs + ` logical_volumes { lv { ` + body + ` } } }`
	}
	for _, c := range []struct {
		name, text string
		want       error
	}{
		{"empty", "", ErrCorrupt},
		{"no vg", `contents = "Text Format Volume Group"` + "\nversion = 1\n", ErrCorrupt},
		{"contents", `contents = "Something Else" vg { extent_size = 1 }`, ErrUnsupported},
		{"version", `version = 2 vg { extent_size = 1 }`, ErrUnsupported},
		{"extent size", `vg { extent_size = 0 }`, ErrCorrupt},
		{"extent size huge", `vg { extent_size = 9223372036854775807 }`, ErrCorrupt},
		{"unterminated section", `vg { extent_size = 1 `, ErrCorrupt},
		{"unterminated string", `vg { extent_size = 1 id = "abc }`, ErrCorrupt},
		{"unterminated list", `vg { extent_size = 1 status = ["a", }`, ErrCorrupt},
		{"nested list", `vg { extent_size = 1 status = [[1]] }`, ErrCorrupt},
		{"stray", `vg { extent_size = 1 } }`, ErrCorrupt},
		{"no equals", `vg { extent_size 1 }`, ErrCorrupt},
		{"deep", strings.Repeat("a {", 100) + strings.Repeat("}", 100), ErrCorrupt},
		{"pv without id", `vg { extent_size = 1 physical_volumes { pv0 { pe_start = 1 pe_count = 1 } } }`, ErrCorrupt},
		{"pv twice", `vg { extent_size = 1 physical_volumes { pv0 { id = "a" pe_start = 1 pe_count = 1 } pv0 { id = "a" pe_start = 1 pe_count = 1 } } }`, ErrCorrupt},
		{"pv huge", `vg { extent_size = 8192 physical_volumes { pv0 { id = "a" pe_start = 1 pe_count = 9223372036854775807 } } }`, ErrCorrupt},
		{"lv twice", `vg { extent_size = 8192 ` + pvs + ` logical_volumes { lv { } lv { } } }`, ErrCorrupt},
		{"segment gap", seg(`segment1 { start_extent = 1 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 0] }`), ErrCorrupt},
		{"segment count", seg(`segment_count = 2 segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 0] }`), ErrCorrupt},
		{"no type", seg(`segment1 { start_extent = 0 extent_count = 1 }`), ErrCorrupt},
		{"no stripe count", seg(`segment1 { start_extent = 0 extent_count = 1 type = "striped" stripes = ["pv0", 0] }`), ErrCorrupt},
		{"stripe count 0", seg(`segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 0 stripes = [] }`), ErrCorrupt},
		{"stripes short", seg(`segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 2 stripe_size = 128 stripes = ["pv0", 0] }`), ErrCorrupt},
		{"stripe size", seg(`segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 2 stripe_size = 0 stripes = ["pv0", 0, "pv1", 0] }`), ErrCorrupt},
		{"stripe size uneven", seg(`segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 2 stripe_size = 3000 stripes = ["pv0", 0, "pv1", 0] }`), ErrCorrupt},
		{"extents uneven", seg(`segment1 { start_extent = 0 extent_count = 3 type = "striped" stripe_count = 2 stripe_size = 128 stripes = ["pv0", 0, "pv1", 0] }`), ErrCorrupt},
		{"beyond pv", seg(`segment1 { start_extent = 0 extent_count = 5 type = "striped" stripe_count = 1 stripes = ["pv0", 6] }`), ErrCorrupt},
		{"stripe types", seg(`segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = [0, "pv0"] }`), ErrCorrupt},
		{"extent count huge", seg(`segment1 { start_extent = 0 extent_count = 9223372036854775807 type = "thin" }`), ErrCorrupt},
	} {
		_, err := ParseMetadata([]byte(c.text))
		assert.ErrorIs(t, err, c.want, c.name)
	}
}

func TestParseMetadataSyntax(t *testing.T) {
	vg, err := ParseMetadata([]byte(`# comment at the top
vg{id='single quoted'seqno=0x10 status=["A" "B",'C',]flags=[]extent_size=8 # trailing comment
	weird = bare-word
	float = 1.5
	neg = -3
	physical_volumes{pv0{id="p\"q\\r" pe_start=0 pe_count=4 dev_size=64}}
	logical_volumes{}
}`))
	require.NoError(t, err)
	assert.Equal(t, "single quoted", vg.UUID)
	assert.Equal(t, int64(16), vg.Seqno)
	assert.Equal(t, []string{"A", "B", "C"}, vg.Status)
	assert.Equal(t, `p"q\r`, vg.PVs[0].UUID)
	assert.Empty(t, vg.LVs)
}

func binaryPut32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
