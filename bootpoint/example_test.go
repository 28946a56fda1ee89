package bootpoint_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
	"github.com/standbykit/standbykit/internal/sample"
	"github.com/standbykit/standbykit/p2v"
)

// A standby VM kept from an image set, here on the in-memory hypervisor
// (package esx provides ESXi): one boot point per point, each verified
// against its image point.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "standbykit-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := sample.Write(ctx, dir, sample.Options{DiskSize: 4 << 20, Incrementals: 2}); err != nil {
		log.Fatal(err)
	}
	set, err := aipimage.OpenDir(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()

	sb := &bootpoint.Standby{
		Hypervisor: &hypervisortest.Memory{},
		Inspector:  p2v.Inspector{},
		VM:         bootpoint.VMSpec{Name: "web01-standby"},
	}
	if _, err := sb.Sync(ctx, set); err != nil {
		log.Fatal(err)
	}
	_, bps, err := sb.BootPoints(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, bp := range bps {
		fmt.Println(bp.Snapshot.Name, sb.Verify(ctx, set, bp) == nil)
	}
	// Output:
	// bootpoint 0000 2026-11-01 03:00 true
	// bootpoint 0001 2026-11-02 03:00 true
	// bootpoint 0002 2026-11-03 03:00 true
}
