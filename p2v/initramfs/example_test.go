package initramfs_test

import (
	"fmt"
	"log"
	"os"

	"github.com/standbykit/standbykit/p2v/initramfs"
)

// Example lists a dracut-style image (an uncompressed early-microcode
// archive followed by a gzip-compressed main archive) and checks which
// disk-controller drivers a VM could boot with.
func Example() {
	f, err := os.Open("testdata/small.img")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	a, err := initramfs.Read(f, initramfs.DefaultLimit)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range a.Segments {
		fmt.Println("segment:", s.Format, "at", s.Offset)
	}
	fmt.Println("kernels:", a.KernelVersions())
	fmt.Println("modules:", a.Modules())
	fmt.Println("builtin:", a.Builtin())
	for _, driver := range []string{"vmw_pvscsi", "mptsas", "ahci", "nvme-core"} {
		fmt.Printf("%s: %v\n", driver, a.Has(driver))
	}
	// Output:
	// segment: cpio at 0
	// segment: gzip at 1024
	// kernels: [6.1.0-18-amd64]
	// modules: [ahci vmw_pvscsi]
	// builtin: [nvme_core]
	// vmw_pvscsi: true
	// mptsas: false
	// ahci: true
	// nvme-core: true
}
