package esx_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/p2v"
)

// A standby VM on the simulator: start it on a local folder, connect as
// with GOVC_* settings, create the VM from a disk's content, take boot
// point 0, write boot point 1 and read it back.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "esx-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	sim, err := esxsim.Start(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	// The simulator runs the writer appliance's program in process: the
	// appliance needs no boot image there.
	host, err := esx.Connect(ctx, esx.Config{URL: sim.URL(), Insecure: true, Datastore: esxsim.Datastore,
		ApplianceImage: esx.ApplianceImageNone})
	if err != nil {
		log.Fatal(err)
	}
	defer host.Close(ctx)

	// An 8 MiB disk with a boot sector; the rest is zeros.
	disk := make([]byte, 8<<20)
	copy(disk[510:], []byte{0x55, 0xaa})
	vm, err := host.CreateStandby(ctx, bootpoint.VMSpec{
		Name:       "web01-standby",
		Firmware:   p2v.FirmwareBIOS,
		Controller: p2v.ControllerPVSCSI,
		Network:    "VM Network",
	}, []bootpoint.Delta{{Disk: 0, Size: int64(len(disk)), Extents: []aipimage.Extent{{Off: 0, Len: 512}}, Source: bytes.NewReader(disk)}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := host.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "first"); err != nil {
		log.Fatal(err)
	}

	// Boot point 1 changes one sector at 1 MiB. Base is what the disk
	// holds before: the appliance checks it before writing.
	before := bytes.Clone(disk)
	copy(disk[1<<20:], "changed by the next backup")
	snap, err := host.AddBootPoint(ctx, vm, []bootpoint.Delta{{Disk: 0, Size: int64(len(disk)),
		Extents: []aipimage.Extent{{Off: 1 << 20, Len: 512}}, Source: bytes.NewReader(disk), Base: bytes.NewReader(before)}},
		"bootpoint 0001", "second")
	if err != nil {
		log.Fatal(err)
	}
	files, err := host.ChainFiles(ctx, vm, snap, 0)
	if err != nil {
		log.Fatal(err)
	}
	back, err := host.OpenDisk(ctx, vm, snap, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer back.Close()
	got := make([]byte, back.Size())
	if _, err := back.ReadAt(got, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Println("created", vm.Name)
	fmt.Println("boot point", snap.Name, "is", files)
	fmt.Println("reads back equal:", bytes.Equal(got, disk))
	// Output:
	// created web01-standby
	// boot point bootpoint 0001 is [[datastore1] web01-standby/web01-standby-000001.vmdk [datastore1] web01-standby/web01-standby.vmdk]
	// reads back equal: true
}
