package xfs_test

import (
	"fmt"
	"log"
	"os"

	"github.com/standbykit/standbykit/p2v/xfs"
)

// Example lists /boot and reads /etc/fstab from an XFS partition image
// without mounting it. (It has no Output: it needs a real image.)
func Example() {
	f, err := os.Open("root.xfs") // the partition, not the whole disk
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	fsys, err := xfs.Open(f, st.Size())
	if err != nil {
		log.Fatal(err) // errors.Is(err, xfs.ErrNotXFS) for another filesystem
	}
	fmt.Println("UUID", fsys.UUID())
	ents, err := fsys.ReadDir("/boot")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range ents {
		fmt.Println(e.Name, e.Inode)
	}
	fstab, err := fsys.ReadFile("/etc/fstab")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", fstab)
	// The initramfs is large: map it instead of reading it.
	ranges, err := fsys.FileRanges("/boot/initramfs-x.img")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range ranges {
		fmt.Println(r.Offset, r.Length, r.Zero)
	}
}
