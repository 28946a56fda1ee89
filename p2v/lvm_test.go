package p2v

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// lvmCRC is LVM2's checksum: CRC-32 (IEEE, reflected) from 0xf597a6cf,
// without the usual inversions.
func lvmCRC(b []byte) uint32 { return ^crc32.Update(^uint32(0xf597a6cf), crc32.IEEETable, b) }

// Layout of the test PV: 1 MiB extents from 1 MiB, 20 of them.
const (
	pvExtent  = 1 << 20
	pvPEStart = 1 << 20
	pvUUID    = "Wd2fXq0Ll1VHn8cT3kQeYp5rZs7uJmA9"
)

// buildPV writes an LVM2 physical volume as pvcreate lays it out: the
// label in sector 1, the metadata area at 4 KiB with the text at 512
// bytes into it, extents from pvPEStart.
func buildPV(size int64, text string) []byte {
	img := make([]byte, size)
	le := binary.LittleEndian
	lab := img[512:1024]
	copy(lab, "LABELONE")
	le.PutUint64(lab[8:], 1)
	le.PutUint32(lab[20:], 32)
	copy(lab[24:], "LVM2 001")
	h := lab[32:]
	copy(h, pvUUID)
	le.PutUint64(h[32:], uint64(size))
	for i, v := range []uint64{pvPEStart, 0, 0, 0, 4096, pvPEStart - 4096, 0, 0} {
		le.PutUint64(h[40+8*i:], v)
	}
	le.PutUint32(lab[16:], lvmCRC(lab[20:]))
	mda := img[4096:pvPEStart]
	hd := mda[:512]
	copy(hd[4:], " LVM2 x[5A%r0N*>")
	le.PutUint32(hd[20:], 1)
	le.PutUint64(hd[24:], 4096)
	le.PutUint64(hd[32:], uint64(len(mda)))
	raw := append([]byte(text), 0)
	copy(mda[512:], raw)
	le.PutUint64(hd[40:], 512)
	le.PutUint64(hd[48:], uint64(len(raw)))
	le.PutUint32(hd[56:], lvmCRC(raw))
	le.PutUint32(hd[0:], lvmCRC(hd[4:]))
	return img
}

// The root LV: extents 0-7 at PV extent 10, extents 8-15 at PV extent 0
// (out of order on the PV, as after an lvextend); swap at 18-19.
func vgText() string {
	seg := func(n, start, count, pe int) string {
		return fmt.Sprintf("segment%d {\nstart_extent = %d\nextent_count = %d\ntype = \"striped\"\nstripe_count = 1\nstripes = [\n\"pv0\", %d\n]\n}\n", n, start, count, pe)
	}
	return `contents = "Text Format Volume Group"
version = 1
rhel {
id = "c0ffee-0000-1111-2222-3333-4444-555555"
seqno = 3
format = "lvm2"
status = ["RESIZEABLE", "READ", "WRITE"]
extent_size = 2048
physical_volumes {
pv0 {
id = "Wd2fXq-0Ll1-VHn8-cT3k-QeYp-5rZs-7uJmA9"
device = "/dev/sda2"
status = ["ALLOCATABLE"]
dev_size = 43008
pe_start = 2048
pe_count = 20
}
}
logical_volumes {
root {
id = "r00t00-aaaa-bbbb-cccc-dddd-eeee-ffffff"
status = ["READ", "WRITE", "VISIBLE"]
segment_count = 2
` + seg(1, 0, 8, 10) + seg(2, 8, 8, 0) + `}
swap {
id = "sw4p00-aaaa-bbbb-cccc-dddd-eeee-ffffff"
status = ["READ", "WRITE", "VISIBLE"]
segment_count = 1
` + seg(1, 0, 2, 18) + `}
}
}
`
}

// TestInspectRootOnLVM: the root file system on a logical volume whose
// extents are out of order on the PV; the fstab patch must land on the
// right disk bytes.
func TestInspectRootOnLVM(t *testing.T) {
	fstab := "/dev/mapper/rhel-root / ext4 defaults 1 1\n/dev/sda1 /boot ext4 defaults 1 2\n/dev/mapper/rhel-swap swap swap defaults 0 0\n"
	root := mkext4(t, map[string]string{
		"etc/os-release": "ID=\"rhel\"\nVERSION_ID=\"9.2\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.2 (Plow)\"\n",
		"etc/fstab":      fstab,
	}, uuidRoot, 16)
	boot := mkext4(t, map[string]string{
		"grub2/grub.cfg":                      "linux /vmlinuz root=/dev/mapper/rhel-root ro rd.lvm.lv=rhel/root\n",
		"initramfs-5.14.0-284.el9.x86_64.img": mkInitramfs(t, "5.14.0-284.el9.x86_64", "kernel/drivers/scsi/vmw_pvscsi.ko.xz"),
	}, uuidBoot, 8)
	// Place the root file system's extents where the LV maps them.
	pv := buildPV(21<<20, vgText())
	for e := 0; e < 16; e++ {
		pe := 10 + e
		if e >= 8 {
			pe = e - 8
		}
		copy(pv[pvPEStart+pe*pvExtent:], root[e*pvExtent:(e+1)*pvExtent])
	}
	disk := partitionedDisk(t, "label: dos\nsize=8M, type=83, bootable\nsize=21M, type=8e\n", 32, boot, pv)

	plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(disk)})
	require.NoError(t, err)
	require.Equal(t, "rhel9_64Guest", plan.GuestID)
	require.Equal(t, ControllerPVSCSI, plan.Controller, "%v", plan.Warnings)
	require.NotEmpty(t, plan.Patches, "%v", plan.Warnings)

	patched := bytes.Clone(disk)
	for _, p := range plan.Patches {
		copy(patched[p.Offset:], p.Data)
	}
	// Read the LV back out of the patched disk with the test's own layout.
	table, err := ReadPartitionTable(bytes.NewReader(patched), int64(len(patched)), 512)
	require.NoError(t, err)
	pvStart := table.Partitions[1].Start
	lv := make([]byte, 16<<20)
	for e := 0; e < 16; e++ {
		pe := 10 + e
		if e >= 8 {
			pe = e - 8
		}
		off := pvStart + pvPEStart + int64(pe)*pvExtent
		copy(lv[e*pvExtent:], patched[off:off+pvExtent])
	}
	img := filepath.Join(t.TempDir(), "root.img")
	require.NoError(t, os.WriteFile(img, lv, 0o644))
	out, err := oracle.Output("e2fsck", "-fn", img)
	require.NoError(t, err, "%s", out)
	got := string(oracle.Run(t, "debugfs", "-R", "cat /etc/fstab", img))
	require.Equal(t, strings.Replace(fstab, "/dev/sda1", "UUID="+uuidBoot, 1), got)
}
