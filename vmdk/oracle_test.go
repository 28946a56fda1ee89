package vmdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// qemuCompare asserts that qemu-img finds the vmdk identical to the raw
// image.
func qemuCompare(t *testing.T, raw, vmdk string) {
	t.Helper()
	out := oracle.Run(t, "qemu-img", "compare", "-f", "raw", "-F", "vmdk", raw, vmdk)
	require.Contains(t, string(out), "Images are identical")
}

// qemuRaw returns the disk content as qemu-img reads it.
func qemuRaw(t *testing.T, vmdk string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "qemu.raw")
	oracle.Run(t, "qemu-img", "convert", "-O", "raw", vmdk, out)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

type qemuInfo struct {
	Format         string `json:"format"`
	VirtualSize    int64  `json:"virtual-size"`
	BackingFile    string `json:"backing-filename"`
	FormatSpecific struct {
		Data struct {
			CreateType string `json:"create-type"`
			CID        int64  `json:"cid"`
			ParentCID  int64  `json:"parent-cid"`
		} `json:"data"`
	} `json:"format-specific"`
}

func qemuChain(t *testing.T, vmdk string) []qemuInfo {
	t.Helper()
	out := oracle.Run(t, "qemu-img", "info", "--output=json", "--backing-chain", vmdk)
	var infos []qemuInfo
	require.NoError(t, json.Unmarshal(out, &infos), string(out))
	return infos
}

func TestStreamOptimizedAgainstQemu(t *testing.T) {
	oracle.Require(t, "qemu-img")
	vmdkinfo := oracle.Require(t, "vmdkinfo")
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name    string
		size    int64
		data    bool // write only some ranges
		workers int
		stdlib  bool
	}{
		{"whole-40MiB", 40<<20 + 64<<10, false, 0, false},
		{"odd-size", 3<<20 + 7*SectorSize, false, 3, false},
		{"ranges", 70 << 20, true, 2, false},
		{"stdlib-zlib", 5 << 20, false, 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			disk := mixedDisk(r, tc.size)
			want := disk
			o := StreamOptions{Workers: tc.workers, stdlib: tc.stdlib}
			if tc.data {
				// Only the ranges (widened to grains) reach the file; bytes
				// elsewhere must not.
				o.Data = randomChanges(r, tc.size)
				want = make([]byte, len(disk))
				for _, g := range grainRuns(o.Data) {
					lo, hi := g.Off*streamGrainSize, min(g.End()*streamGrainSize, tc.size)
					copy(want[lo:hi], disk[lo:hi])
				}
			}
			res := writeStream(t, dir, "disk.vmdk", disk, o)
			raw := writeFile(t, dir, "want.raw", want)
			file := filepath.Join(dir, "disk.vmdk")
			qemuCompare(t, raw, file)
			oracle.Run(t, "qemu-img", "check", file)
			info := qemuChain(t, file)
			require.Len(t, info, 1)
			require.Equal(t, "streamOptimized", info[0].FormatSpecific.Data.CreateType)
			require.Equal(t, tc.size, info[0].VirtualSize)
			require.Equal(t, int64(res.Descriptor.CID), info[0].FormatSpecific.Data.CID)
			out := oracle.Run(t, vmdkinfo, file)
			require.Contains(t, strings.ToLower(string(out)), "stream optimized")
			require.Equal(t, want, readChain(t, dir, "disk.vmdk"))
		})
	}
}

func TestDeltaChainAgainstQemu(t *testing.T) {
	oracle.Require(t, "qemu-img")
	r := rand.New(rand.NewPCG(3, 4))
	for _, baseKind := range []string{"vmfs", "streamOptimized"} {
		t.Run(baseKind, func(t *testing.T) {
			dir := t.TempDir()
			size := int64(6<<20 + 4096)
			disk := mixedDisk(r, size)
			var parent *Descriptor
			parentName := "sb.vmdk"
			if baseKind == "vmfs" {
				parent = writeFlatBase(t, dir, parentName, disk)
			} else {
				parent = writeStream(t, dir, parentName, disk, StreamOptions{}).Descriptor
			}
			for k := 1; k <= 6; k++ {
				var changes []Range // k == 3: an empty delta reads as its parent
				if k != 3 {
					changes = randomChanges(r, size)
					next := mixedDisk(r, size)
					for _, c := range changes {
						copy(disk[c.Off:c.End()], next[c.Off:c.End()])
					}
				}
				d := writeDelta(t, dir, parentName, parent, disk, changes)
				require.Equal(t, "sb-00000"+strconv.Itoa(k)+".vmdk", d.DescriptorName)
				raw := writeFile(t, dir, "want.raw", disk)
				leaf := filepath.Join(dir, d.DescriptorName)
				qemuCompare(t, raw, leaf)
				require.Equal(t, disk, readChain(t, dir, d.DescriptorName))
				chain := qemuChain(t, leaf)
				require.Len(t, chain, k+1)
				require.Equal(t, "vmfsSparse", chain[0].FormatSpecific.Data.CreateType)
				require.Equal(t, int64(parent.CID), chain[0].FormatSpecific.Data.ParentCID)
				parent, parentName = d.Descriptor, d.DescriptorName
			}
		})
	}
}

func TestDeltaOnlyHoldsChanges(t *testing.T) {
	oracle.Require(t, "qemu-img")
	dir := t.TempDir()
	size := int64(16 << 20)
	disk := make([]byte, size)
	base := writeFlatBase(t, dir, "sb.vmdk", disk)
	changes := []Range{{Off: 4096, Len: 512}, {Off: 2<<20 - 1024, Len: 4096}, {Off: size - 512, Len: 512}}
	for _, c := range changes {
		for i := c.Off; i < c.End(); i++ {
			disk[i] = 0xa5
		}
	}
	d := writeDelta(t, dir, "sb.vmdk", base, disk, changes)
	out := oracle.Run(t, "qemu-img", "map", "--output=json", filepath.Join(dir, d.DescriptorName))
	var m []struct {
		Start, Length int64
		Depth         int
	}
	require.NoError(t, json.Unmarshal(out, &m))
	var inDelta []Range
	for _, e := range m {
		if e.Depth == 0 {
			inDelta = append(inDelta, Range{Off: e.Start, Len: e.Length})
		}
	}
	require.Equal(t, normalize(changes), normalize(inDelta))
	// Three regions touched: header 4 + directory 1 + 3×32 table sectors
	// + 10 data sectors = 111 sectors, padded to 64 KiB.
	require.Equal(t, uint32(111), d.free)
	require.Equal(t, int64(64<<10), d.ExtentSize)
}

func TestTamperedParentCIDIsRefused(t *testing.T) {
	oracle.Require(t, "qemu-img")
	dir := t.TempDir()
	disk := mixedDisk(rand.New(rand.NewPCG(5, 6)), 4<<20)
	base := writeFlatBase(t, dir, "sb.vmdk", disk)
	d := writeDelta(t, dir, "sb.vmdk", base, disk, []Range{{Off: 0, Len: 1 << 20}})
	// The base changes after the child was made: its CID moves on.
	base.SetCID(base.CID + 1)
	text, err := base.MarshalText()
	require.NoError(t, err)
	writeFile(t, dir, "sb.vmdk", text)

	raw := writeFile(t, dir, "want.raw", disk)
	out, err := oracle.Output("qemu-img", "compare", "-f", "raw", "-F", "vmdk", raw, filepath.Join(dir, d.DescriptorName))
	require.Error(t, err, "qemu-img accepted a tampered chain: %s", out)

	_, err = OpenChain(os.DirFS(dir), d.DescriptorName)
	require.ErrorIs(t, err, ErrCIDMismatch)
	var fe *FileError
	require.True(t, errors.As(err, &fe))
	require.Equal(t, d.DescriptorName, fe.File)
}

// TestReadsChainsQemuMade reads files nobody here wrote: qemu-img's own
// subformats and a qemu-made child written with qemu-io.
func TestReadsChainsQemuMade(t *testing.T) {
	oracle.Require(t, "qemu-img")
	oracle.Require(t, "qemu-io")
	dir := t.TempDir()
	disk := mixedDisk(rand.New(rand.NewPCG(7, 8)), 9<<20+3*SectorSize)
	raw := writeFile(t, dir, "disk.raw", disk)
	for _, sub := range []string{"monolithicSparse", "streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		t.Run(sub, func(t *testing.T) {
			name := sub + ".vmdk"
			oracle.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, raw, filepath.Join(dir, name))
			got := readChain(t, dir, name)
			want := qemuRaw(t, filepath.Join(dir, name))
			require.Equal(t, len(want), len(got))
			require.True(t, bytes.Equal(want, got))
			require.True(t, bytes.Equal(disk, got[:len(disk)]))
		})
	}
	t.Run("qemu-child", func(t *testing.T) {
		base := filepath.Join(dir, "monolithicSparse.vmdk")
		if _, err := os.Stat(base); err != nil {
			oracle.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw, base)
		}
		child := filepath.Join(dir, "child.vmdk")
		oracle.Run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-b", "monolithicSparse.vmdk", "-F", "vmdk", child)
		var cmds []string
		for i, off := range []int64{0, 65536 + 512, 3<<20 - 4096, 8 << 20} {
			cmds = append(cmds, "-c", "write -P "+strconv.Itoa(0x30+i)+" "+strconv.FormatInt(off, 10)+" 70000")
		}
		oracle.Run(t, "qemu-io", append(cmds, "-f", "vmdk", child)...)
		want := qemuRaw(t, child)
		got := readChain(t, dir, "child.vmdk")
		require.True(t, bytes.Equal(want, got))
		require.False(t, bytes.Equal(disk, got[:len(disk)]), "the writes must show")
	})
}

func TestDeltaLimits(t *testing.T) {
	huge := BaseDescriptor(CreateVMFS, ExtentVMFS, "x-flat.vmdk", 2<<40, "")
	_, err := NewDelta("x.vmdk", huge, nil)
	require.ErrorIs(t, err, ErrTooLarge)
	justUnder := BaseDescriptor(CreateVMFS, ExtentVMFS, "x-flat.vmdk", 2<<40-512, "")
	d, err := NewDelta("x.vmdk", justUnder, nil)
	require.NoError(t, err)
	require.Equal(t, int64(4<<20+2048), (int64(d.free))*SectorSize)

	small := BaseDescriptor(CreateVMFS, ExtentVMFS, "x-flat.vmdk", 1<<20, "")
	_, err = NewDelta("x.vmdk", small, []Range{{Off: 100, Len: 512}})
	require.ErrorIs(t, err, ErrInvalidInput)
	_, err = NewDelta("x.vmdk", small, []Range{{Off: 0, Len: 2 << 20}})
	require.ErrorIs(t, err, ErrInvalidInput)
	_, err = NewDelta("x.vmdk", small, []Range{{Off: 4096, Len: 512}, {Off: 0, Len: 512}})
	require.ErrorIs(t, err, ErrInvalidInput)
	require.True(t, strings.HasSuffix(d.DescriptorName, "-000001.vmdk"))
}
