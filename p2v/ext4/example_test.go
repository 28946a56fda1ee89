package ext4_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/standbykit/standbykit/p2v"
	"github.com/standbykit/standbykit/p2v/ext4"
)

// Example reads /etc/fstab from a filesystem, rewrites it in place as
// patches, and reads the result back through a p2v.Overlay: the image
// itself is never written.
func Example() {
	f, err := os.Open("testdata/tiny.ext4.gz") // a 256 KiB ext4 with metadata_csum
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		log.Fatal(err)
	}
	img, err := io.ReadAll(zr)
	if err != nil {
		log.Fatal(err)
	}

	fsys, err := ext4.Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		log.Fatal(err)
	}
	old, err := fsys.ReadFile("/etc/fstab")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("before:\n%s", old)

	// Mount the root filesystem by UUID, the swap by its new name.
	fixed := strings.Replace(string(old), "/dev/sda1", "UUID="+fsys.UUID(), 1)
	fixed = strings.Replace(fixed, "/dev/sda2", "/dev/vda2", 1)
	patches, err := fsys.RewriteFile("/etc/fstab", []byte(fixed))
	if err != nil {
		log.Fatal(err)
	}

	// The filesystem is partition 0 of disk 0, starting at partStart.
	const partStart = 0
	plan := &p2v.Plan{}
	for _, p := range patches {
		plan.Patches = append(plan.Patches, p2v.Patch{
			Disk: 0, Offset: partStart + p.Offset, Data: p.Data,
			Why: "fstab: mount / by UUID; the disk is /dev/vda in the VM",
		})
	}
	fmt.Println("patches:", len(patches))

	ov, err := p2v.NewOverlay(bytes.NewReader(img), plan, 0)
	if err != nil {
		log.Fatal(err)
	}
	after, err := ext4.Open(ov, int64(len(img)))
	if err != nil {
		log.Fatal(err)
	}
	data, err := after.ReadFile("/etc/fstab")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("after:\n%s", data)

	// Output:
	// before:
	// /dev/sda1 / ext4 defaults 0 1
	// /dev/sda2 none swap sw 0 0
	// patches: 2
	// after:
	// UUID=2a1d5b6e-4c8f-4a3e-9b7d-1f0e2d3c4b5a / ext4 defaults 0 1
	// /dev/vda2 none swap sw 0 0
}
