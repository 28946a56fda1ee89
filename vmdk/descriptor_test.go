package vmdk

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// esxiBase and esxiDelta are descriptors as ESXi writes them (from
// VMware's documentation and real files).
const esxiBase = `# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
isNativeSnapshot="no"
createType="vmfs"

# Extent description
RW 83886080 VMFS "VM-flat.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.geometry.cylinders = "5221"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.longContentID = "7ed9bde6bd0e9d3c78369865fffffffe"
ddb.thinProvisioned = "1"
ddb.uuid = "60 00 C2 99 d3 f5 dc ad-9e 25 3e 89 48 2c 3f de"
ddb.virtualHWVersion = "11"
`

const esxiDelta = "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=9ab16ab9\r\nparentCID=c3d4fd75\r\n" +
	"isNativeSnapshot=\"no\"\r\ncreateType=\"vmfsSparse\"\r\nparentFileNameHint=\"android.vmdk\"\r\n# Extent description\r\n" +
	"RW 41943040 VMFSSPARSE \"android.vmdk-delta.REDO_TkLU1V\"\r\n\r\n# The Disk Data Base\r\n#DDB\r\n\r\n" +
	"ddb.longContentID = \"e6d6c9b8c7164488a10a36b39ab16ab9\"\r\n"

func TestParseESXiDescriptors(t *testing.T) {
	d, err := ParseDescriptor([]byte(esxiBase))
	require.NoError(t, err)
	require.Equal(t, uint32(0xfffffffe), d.CID)
	require.Equal(t, NoParent, d.ParentCID)
	require.Equal(t, CreateVMFS, d.CreateType)
	require.Equal(t, []Extent{{Access: "RW", Sectors: 83886080, Type: ExtentVMFS, File: "VM-flat.vmdk"}}, d.Extents)
	require.Equal(t, int64(83886080*512), d.Capacity())
	require.Equal(t, "lsilogic", d.Get("ddb.adapterType"))
	require.Equal(t, "1", d.Get("DDB.THINPROVISIONED"))
	cyl, heads, sectors := SCSIGeometry(d.Capacity())
	require.Equal(t, [3]int64{5221, 255, 63}, [3]int64{cyl, heads, sectors})

	// Round trip: what we write parses to the same descriptor.
	text, err := d.MarshalText()
	require.NoError(t, err)
	again, err := ParseDescriptor(text)
	require.NoError(t, err)
	require.Equal(t, d, again)

	d, err = ParseDescriptor([]byte(esxiDelta))
	require.NoError(t, err)
	require.Equal(t, uint32(0x9ab16ab9), d.CID)
	require.Equal(t, uint32(0xc3d4fd75), d.ParentCID)
	require.Equal(t, "android.vmdk", d.ParentFileNameHint)
	require.Equal(t, ExtentVMFSSparse, d.Extents[0].Type)
}

func TestDescriptorCanonicalSpelling(t *testing.T) {
	d := BaseDescriptor(CreateVMFS, ExtentVMFS, "sb-flat.vmdk", 1<<30, "")
	d.SetCID(0x42)
	text, err := d.MarshalText()
	require.NoError(t, err)
	s := string(text)
	// qemu matches these with strstr: exact spelling, CID before parentCID.
	require.Contains(t, s, "\nCID=00000042\nparentCID=ffffffff\n")
	require.Contains(t, s, "\ncreateType=\"vmfs\"\n")
	require.Contains(t, s, "\nRW 2097152 VMFS \"sb-flat.vmdk\"\n")
	require.Regexp(t, `ddb.longContentID = "[0-9a-f]{24}00000042"`, s)
	require.Regexp(t, `ddb.uuid = "([0-9a-f]{2} ){7}[0-9a-f]{2}-([0-9a-f]{2} ){7}[0-9a-f]{2}"`, s)
}

func TestParseDescriptorRejects(t *testing.T) {
	for name, text := range map[string]string{
		"empty":          "",
		"no version":     "CID=1\ncreateType=\"vmfs\"\nRW 8 VMFS \"a\"\n",
		"key before":     "createType=\"vmfs\"\nversion=1\nRW 8 VMFS \"a\"\n",
		"bad version":    "version=9\ncreateType=\"vmfs\"\nRW 8 VMFS \"a\"\n",
		"bad cid":        "version=1\nCID=xyz\ncreateType=\"vmfs\"\nRW 8 VMFS \"a\"\n",
		"no extents":     "version=1\ncreateType=\"vmfs\"\n",
		"no create type": "version=1\nRW 8 VMFS \"a\"\n",
		"bad size":       "version=1\ncreateType=\"vmfs\"\nRW -8 VMFS \"a\"\n",
		"unquoted file":  "version=1\ncreateType=\"vmfs\"\nRW 8 VMFS a\n",
		"binary":         "\x7fELF\x02\x01",
	} {
		_, err := ParseDescriptor([]byte(text))
		require.ErrorIs(t, err, ErrCorrupt, name)
	}
}

func TestNames(t *testing.T) {
	require.Equal(t, "sb.vmdk", DiskName("sb", 0))
	require.Equal(t, "sb_2.vmdk", DiskName("sb", 2))
	require.Equal(t, "sb-flat.vmdk", FlatName("sb.vmdk"))
	for parent, want := range map[string][2]string{
		"sb.vmdk":              {"sb-000001.vmdk", "sb-000001-delta.vmdk"},
		"sb-000001.vmdk":       {"sb-000002.vmdk", "sb-000002-delta.vmdk"},
		"dir/sb_1-000041.vmdk": {"dir/sb_1-000042.vmdk", "dir/sb_1-000042-delta.vmdk"},
		"my-vm.vmdk":           {"my-vm-000001.vmdk", "my-vm-000001-delta.vmdk"},
	} {
		d, e := NextDeltaName(parent)
		require.Equal(t, want, [2]string{d, e}, parent)
	}
}

func TestEmbeddedDescriptor(t *testing.T) {
	text := []byte(esxiBase)
	got, err := EmbeddedDescriptor(text)
	require.NoError(t, err)
	require.Equal(t, text, got)

	b := make([]byte, 3*SectorSize)
	h := sparseHeader{Version: 1, DescriptorOffset: 1, DescriptorSize: 2}
	h.encode(b)
	copy(b[SectorSize:], "version=1\n")
	got, err = EmbeddedDescriptor(b)
	require.NoError(t, err)
	require.Equal(t, "version=1\n", string(got))
	_, err = EmbeddedDescriptor(b[:2*SectorSize])
	require.ErrorIs(t, err, ErrCorrupt)
}
