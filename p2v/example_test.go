package p2v_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/standbykit/standbykit/p2v"
)

// Inspecting a blank disk finds no system: the plan keeps default
// hardware and says why.
func ExampleInspector_InspectDisks() {
	disk := bytes.NewReader(make([]byte, 8<<20))
	plan, err := p2v.Inspector{}.InspectDisks(context.Background(), []p2v.Disk{disk})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(plan.Firmware, len(plan.Patches))
	fmt.Println(plan.Warnings[0])
	// Output:
	// bios 0
	// no Windows or Linux system found on the disks: the VM gets default hardware and no fixups
}

// An overlay shows a disk with a plan's patches applied, without writing.
func ExampleNewOverlay() {
	disk := bytes.NewReader([]byte("Start=3 in the registry"))
	plan := &p2v.Plan{Patches: []p2v.Patch{{Offset: 6, Data: []byte("0"), Why: "boot-start"}}}
	o, err := p2v.NewOverlay(disk, plan, 0)
	if err != nil {
		log.Fatal(err)
	}
	b := make([]byte, disk.Size())
	o.ReadAt(b, 0)
	fmt.Println(string(b))
	// Output:
	// Start=0 in the registry
}
