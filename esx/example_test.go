package esx_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/p2v"
)

// A standby VM on the simulator: start it on a local folder, connect as
// with GOVC_* settings, create the VM from a base disk stream and take
// boot point 0.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "esx-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	sim, err := esx.StartSimulator(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	host, err := esx.Connect(ctx, sim.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer host.Close(ctx)

	// Any bytes do for the simulator; a real host needs a streamOptimized
	// VMDK. Size -1: the stream is spooled to learn its length.
	base := []byte("stream-optimized disk bytes, opaque to the simulator")
	vm, err := host.CreateStandby(ctx, bootpoint.VMSpec{
		Name:       "web01-standby",
		Firmware:   p2v.FirmwareEFI,
		Controller: p2v.ControllerPVSCSI,
		DiskSizes:  []int64{8 << 30},
		Network:    "VM Network",
	}, []bootpoint.File{{Name: "base.vmdk", Size: -1, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(base)), nil
	}}})
	if err != nil {
		log.Fatal(err)
	}
	snap, err := host.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "first")
	if err != nil {
		log.Fatal(err)
	}
	name, _, err := host.LeafDescriptor(ctx, vm, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created", vm.Name)
	fmt.Println("boot point", snap.Name)
	fmt.Println("leaf of disk 0:", name)
	stored, err := os.ReadFile(dir + "/web01-standby/web01-standby.vmdk")
	fmt.Println("base stored:", err == nil && bytes.Equal(stored, base))
	// Output:
	// created web01-standby
	// boot point bootpoint 0000
	// leaf of disk 0: web01-standby.vmdk
	// base stored: true
}
