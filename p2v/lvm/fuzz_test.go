package lvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/fuzzimage"
)

// fuzzMaxPV caps the device size of FuzzReadPV, whose inputs are sparse
// images (internal/fuzzimage).
const fuzzMaxPV = 256 << 10

// seedPVs are the FuzzReadPV seeds: small PVs with metadata areas of a
// few KiB (their LVs lie past the end of the image, which ReadPV does not
// read).
func seedPVs(tb testing.TB) map[string][]byte {
	text := testMetadata(9)
	real := string(readTestdata(tb, "xenserver-testvg.txt"))
	base := imgSpec{UUID: tUUID0, Size: 4096 + 8<<10, LabelSector: 1, MDASize: 8 << 10, PEStart: 16 << 10, Text: text}
	wrapped := base
	wrapped.TextOffset = base.MDASize - 700
	orphan := base
	orphan.Text = ""
	two := base
	two.Size = 4096 + 16<<10
	two.SecondMDA = true
	two.SecondText = testMetadata(10)
	two.LabelSector = 0
	xen := imgSpec{UUID: "HS9GnKdVQFUuceDKrjEyYLvozbJ0qG6n", Size: 4096 + 8<<10, LabelSector: 1, MDASize: 8 << 10,
		PEStart: 16 << 10, Text: real, TextOffset: 4096, NoExt: true}
	out := map[string][]byte{}
	for name, s := range map[string]imgSpec{"layout": base, "wrapped": wrapped, "orphan": orphan, "two-mdas": two, "xenserver": xen} {
		out[name] = fuzzimage.Sparse(buildPV(tb, s))
	}
	return out
}

func seedTexts(tb testing.TB) map[string][]byte {
	return map[string][]byte{
		"layout":    []byte(testMetadata(1)),
		"redhat":    readTestdata(tb, "redhat-myvg.vg"),
		"xenserver": readTestdata(tb, "xenserver-testvg.txt"),
		"syntax":    []byte("# c\nv{extent_size=0x8 id='q' l=[1 \"a\\\"\",] physical_volumes{p{id=\"u\" pe_start=0 pe_count=2}} logical_volumes{x{segment1{start_extent=0 extent_count=2 type=\"striped\" stripe_count=2 stripe_size=4 stripes=[\"p\",0,\"p\",1]}}}}"),
	}
}

func FuzzReadPV(f *testing.F) {
	for _, b := range seedPVs(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		data := fuzzimage.Decode(input, fuzzMaxPV).Bytes()
		readPVFuzz(t, data)
		// Again with the checksums made right, so that mutations reach the
		// parsing behind them.
		readPVFuzz(t, fixChecksums(bytes.Clone(data)))
	})
}

func readPVFuzz(t *testing.T, data []byte) {
	r := bytes.NewReader(data)
	pv, err := ReadPV(r, int64(len(data)))
	if err != nil {
		if !errors.Is(err, ErrNotLVM) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("untyped error %v", err)
		}
		return
	}
	if pv.VG != nil {
		exercise(t, pv.VG, r)
	}
}

// fixChecksums sets the label, metadata area header and first raw
// location checksums of a PV image to what its contents imply.
func fixChecksums(img []byte) []byte {
	le := binary.LittleEndian
	for s := 0; s < labelScan && (s+1)*SectorSize <= len(img); s++ {
		sec := img[s*SectorSize : (s+1)*SectorSize]
		if string(sec[:8]) != labelID {
			continue
		}
		le.PutUint64(sec[8:], uint64(s))
		var pv PV
		if pv.parseHeader(sec) == nil {
			for _, a := range pv.MetadataAreas {
				fixMDAChecksums(img, a)
			}
		}
		le.PutUint32(sec[16:], calcCRC(initialCRC, sec[20:]))
		break
	}
	return img
}

func fixMDAChecksums(img []byte, a Area) {
	le := binary.LittleEndian
	size := int64(len(img))
	if a.Offset > size-mdaHeaderSize {
		return
	}
	hd := img[a.Offset : a.Offset+mdaHeaderSize]
	start, msize := int64(le.Uint64(hd[24:])), int64(le.Uint64(hd[32:]))
	off, n := int64(le.Uint64(hd[40:])), int64(le.Uint64(hd[48:]))
	if start == a.Offset && msize > 2*mdaHeaderSize && msize <= size-start &&
		off >= mdaHeaderSize && off < msize && n > 0 && n <= msize-mdaHeaderSize {
		first := min(n, msize-off)
		crc := calcCRC(initialCRC, img[start+off:start+off+first])
		crc = calcCRC(crc, img[start+mdaHeaderSize:start+mdaHeaderSize+n-first])
		le.PutUint32(hd[56:], crc)
	}
	le.PutUint32(hd, calcCRC(initialCRC, hd[4:]))
}

func FuzzParseMetadata(f *testing.F) {
	for _, b := range seedTexts(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		vg, err := ParseMetadata(text)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		exercise(t, vg, bytes.NewReader(make([]byte, 4096)))
	})
}

// exercise maps and reads every LV of vg with r standing for all its PVs,
// checking that the mappings cover each LV exactly.
func exercise(t *testing.T, vg *VG, r io.ReaderAt) {
	pvs := map[string]io.ReaderAt{}
	for _, p := range vg.PVs {
		pvs[p.Name] = r
	}
	for i := range vg.LVs {
		if i == 16 {
			break
		}
		lv := &vg.LVs[i]
		if lv.checkSupported() != nil || lv.Size == 0 {
			continue
		}
		for _, off := range []int64{0, lv.Size / 3, lv.Size - 1} {
			_, pvOff, n, err := vg.ToPV(lv.Name, off)
			if err != nil || n < 1 || n > lv.Size-off || pvOff < 0 {
				t.Fatalf("ToPV(%s, %d) = %d, %d, %v", lv.Name, off, pvOff, n, err)
			}
		}
		if lv.Size <= 1<<24 {
			m, err := vg.Map(lv.Name)
			if err != nil {
				t.Fatal(err)
			}
			var next int64
			for _, e := range m {
				if e.LVOffset != next || e.Length <= 0 {
					t.Fatalf("Map(%s): %+v after %d", lv.Name, e, next)
				}
				next += e.Length
			}
			if next != lv.Size {
				t.Fatalf("Map(%s) covers %d of %d", lv.Name, next, lv.Size)
			}
		}
		lr, err := vg.Open(lv.Name, pvs)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		_, _ = lr.ReadAt(buf, 0)
		_, _ = lr.ReadAt(buf, lv.Size-1)
	}
}

// TestWriteSeedCorpus regenerates testdata/fuzz/FuzzReadPV and
// testdata/fuzz/FuzzParseMetadata when STANDBYKIT_WRITE_SEEDS=1;
// otherwise it checks that the committed seeds are current.
func TestWriteSeedCorpus(t *testing.T) {
	write := os.Getenv("STANDBYKIT_WRITE_SEEDS") == "1"
	for target, seeds := range map[string]map[string][]byte{"FuzzReadPV": seedPVs(t), "FuzzParseMetadata": seedTexts(t)} {
		dir := filepath.Join("testdata", "fuzz", target)
		for name, b := range seeds {
			content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			if len(content) > 64<<10 {
				t.Fatalf("%s/%s: %d bytes", target, name, len(content))
			}
			path := filepath.Join(dir, name)
			if write {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != content {
				t.Errorf("%s is missing or stale: run STANDBYKIT_WRITE_SEEDS=1 go test -run TestWriteSeedCorpus ./p2v/lvm", path)
			}
		}
	}
}

// TestRealImages reads the PV images named in STANDBYKIT_LVM_IMAGES
// (separated by the OS path list separator), raw PV images such as a dd
// of an LVM partition or its first MiB, and maps every LV they describe.
func TestRealImages(t *testing.T) {
	list := os.Getenv("STANDBYKIT_LVM_IMAGES")
	if list == "" {
		t.Skip("set STANDBYKIT_LVM_IMAGES to raw PV images to read them")
	}
	for _, path := range filepath.SplitList(list) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		pv, err := ReadPV(f, st.Size())
		if err != nil {
			t.Errorf("%s: %v", path, err)
			_ = f.Close()
			continue
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "%s: PV %s, label sector %d, areas %v, metadata areas %+v", path, pv.UUID, pv.LabelSector, pv.DataAreas, pv.MDAs)
		if vg := pv.VG; vg != nil {
			fmt.Fprintf(&sb, "\n  VG %s seqno %d, %d-byte extents, PVs %+v", vg.Name, vg.Seqno, vg.ExtentSize, vg.PVs)
			for _, lv := range vg.LVs {
				m, err := vg.Map(lv.Name)
				fmt.Fprintf(&sb, "\n  LV %s %d bytes: %+v %v", lv.Name, lv.Size, m, err)
				if err != nil && !errors.Is(err, ErrUnsupported) {
					t.Errorf("%s: LV %s: %v", path, lv.Name, err)
				}
			}
		}
		t.Log(sb.String())
		_ = f.Close()
	}
}
