package lvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/heapprobe"
)

// manyVolumes returns the metadata of a VG of n PVs and n LVs, each LV
// one linear segment on its own PV.
func manyVolumes(n int) []byte {
	var b strings.Builder
	b.WriteString("vg {\nid = \"x\"\nseqno = 1\nextent_size = 8\nphysical_volumes {\n")
	for i := range n {
		fmt.Fprintf(&b, "pv%d { id = \"u%d\" pe_start = 8 pe_count = 1 }\n", i, i)
	}
	b.WriteString("}\nlogical_volumes {\n")
	for i := range n {
		fmt.Fprintf(&b, "lv%d { status = [\"VISIBLE\"] s { start_extent = 0 extent_count = 1 type = \"striped\" stripe_count = 1 stripes = [\"pv%d\", 0] } }\n", i, i)
	}
	b.WriteString("}\n}\n")
	return []byte(b.String())
}

// TestManyVolumesLinear is the regression test of metadata listing many
// PVs and LVs: each name was checked against every earlier one (and each
// stripe's PV looked up by a scan), quadratic in the text's size. 50000
// of each took half a minute; now well under a second (the deadline is
// generous; BenchmarkParseMetadataMany measures).
func TestManyVolumesLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("parses 5 MB of metadata")
	}
	text := manyVolumes(50000)
	start := time.Now()
	vg, err := ParseMetadata(text)
	require.NoError(t, err)
	require.Len(t, vg.LVs, 50000)
	_, pvOff, _, err := vg.ToPV("lv49999", 0)
	require.NoError(t, err)
	require.Equal(t, int64(8*SectorSize), pvOff)
	require.Less(t, time.Since(start), 10*time.Second)

	// Duplicates are still found.
	small := manyVolumes(10)
	_, err = ParseMetadata(bytes.Replace(small, []byte("lv7 {"), []byte("lv8 {"), 1))
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = ParseMetadata(bytes.Replace(small, []byte("pv7 {"), []byte("pv8 {"), 1))
	require.ErrorIs(t, err, ErrCorrupt)
}

func BenchmarkParseMetadataMany(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		text := manyVolumes(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := ParseMetadata(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestClaimsBounded feeds PV headers and metadata that claim enormous
// sizes and counts: each is refused, or mapped as far as it is real,
// without allocating or walking what is claimed.
func TestClaimsBounded(t *testing.T) {
	le := binary.LittleEndian
	base := imgSpec{UUID: tUUID0, Size: 4096 + 8<<10, LabelSector: 1, MDASize: 8 << 10, PEStart: 16 << 10, Text: testMetadata(1)}
	pv := func(edit func(img []byte)) []byte {
		img := buildPV(t, base)
		edit(img)
		return fixChecksums(img)
	}
	mdaHeader := func(img []byte) []byte { return img[4096:][:mdaHeaderSize] }
	devices := map[string][]byte{
		"device and area sizes": pv(func(img []byte) {
			hdr := img[SectorSize:][labelHdrSize:]
			le.PutUint64(hdr[32:], 1<<62)    // device size
			le.PutUint64(hdr[40+8:], 1<<62)  // first data area size
			le.PutUint64(hdr[40+32:], 1<<61) // first metadata area offset
		}),
		"metadata area size": pv(func(img []byte) { le.PutUint64(mdaHeader(img)[32:], 1<<62) }),
		"metadata text size": pv(func(img []byte) { le.PutUint64(mdaHeader(img)[40+8:], 1<<40) }),
		"metadata text offset": pv(func(img []byte) {
			le.PutUint64(mdaHeader(img)[40:], 1<<62)
		}),
	}
	for name, img := range devices {
		var err error
		alloc := heapprobe.Allocated(func() { _, err = ReadPV(bytes.NewReader(img), int64(len(img))) })
		require.ErrorIs(t, err, ErrCorrupt, name)
		require.Less(t, alloc, uint64(256<<10), "%s: %v", name, err)
	}

	seg := func(fields string) []byte {
		return []byte(`vg { extent_size = 8 physical_volumes { pv0 { id = "u" pe_start = 8 pe_count = 1125899906842000 } }
			logical_volumes { lv { status = ["VISIBLE"] s { start_extent = 0 ` + fields + ` } } } }`)
	}
	texts := map[string][]byte{
		"extent size":  []byte(`vg { extent_size = 9223372036854775807 }`),
		"pe count":     []byte(`vg { extent_size = 8 physical_volumes { pv0 { id = "u" pe_start = 0 pe_count = 9223372036854775807 } } }`),
		"extent count": seg(`extent_count = 9223372036854775807 type = "striped" stripe_count = 1 stripes = ["pv0", 0]`),
		"stripe count": seg(`extent_count = 1024 type = "striped" stripe_count = 1048576 stripe_size = 8 stripes = ["pv0", 0]`),
		// 2^52 bytes in 512-byte stripe chunks: Map would have billions of
		// runs; it stops at a million, ToPV and reads cost the same at any
		// offset.
		"tiny stripes": seg(`extent_count = 8796093022208 type = "striped" stripe_count = 2 stripe_size = 1 stripes = ["pv0", 0, "pv0", 4398046511104]`),
	}
	for name, text := range texts {
		var errs []error
		alloc := heapprobe.Allocated(func() {
			vg, err := ParseMetadata(text)
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, lv := range vg.LVs {
				_, _, _, err = vg.ToPV(lv.Name, lv.Size-1)
				errs = append(errs, err)
			}
		})
		err := errors.Join(errs...)
		t.Logf("%s: %d bytes allocated; %v", name, alloc, err)
		require.Less(t, alloc, uint64(256<<10), "%s: %v", name, err)
		if name != "tiny stripes" {
			require.ErrorIs(t, err, ErrCorrupt, name)
		}
	}
	vg, err := ParseMetadata(texts["tiny stripes"])
	require.NoError(t, err)
	_, err = vg.Map("lv")
	require.ErrorIs(t, err, ErrUnsupported)
}
