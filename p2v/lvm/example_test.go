package lvm_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/standbykit/standbykit/p2v/lvm"
)

func Example() {
	part := lvm.SamplePartition() // the LVM partition of a disk
	pv, err := lvm.ReadPV(bytes.NewReader(part), int64(len(part)))
	if err != nil {
		fmt.Println(err)
		return
	}
	vg := pv.VG
	fmt.Printf("PV %s in VG %s, %d KiB extents\n", pv.UUID, vg.Name, vg.ExtentSize>>10)
	for _, lv := range vg.LVs {
		fmt.Printf("LV %s: %d KiB in %d segments\n", lv.Name, lv.Size>>10, len(lv.Segments))
	}

	// Read the root filesystem through the LV.
	root, err := vg.Open("root", map[string]io.ReaderAt{pv.UUID: bytes.NewReader(part)})
	if err != nil {
		fmt.Println(err)
		return
	}
	sb := make([]byte, 1024)
	if _, err := root.ReadAt(sb, 1024); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("ext4 magic %#x\n", binary.LittleEndian.Uint16(sb[56:]))

	// Where does byte 300000 of root live? A patch there goes to the
	// partition at pvOff.
	pvName, pvOff, n, err := vg.ToPV("root", 300000)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("root+300000 is %s+%d, %d bytes contiguous\n", pvName, pvOff, n)

	runs, _ := vg.Map("root")
	for _, r := range runs {
		fmt.Printf("root [%d, %d) -> %s [%d, %d)\n", r.LVOffset, r.LVOffset+r.Length, r.PV, r.PVOffset, r.PVOffset+r.Length)
	}
	// Output:
	// PV Wd2fXq-0Ll1-VHn8-cT3k-QeYp-5rZs-7uJmA9 in VG rhel, 64 KiB extents
	// LV root: 512 KiB in 2 segments
	// LV swap: 128 KiB in 1 segments
	// ext4 magic 0xef53
	// root+300000 is pv0+1741792, 224288 bytes contiguous
	// root [0, 262144) -> pv0 [1179648, 1441792)
	// root [262144, 524288) -> pv0 [1703936, 1966080)
}
