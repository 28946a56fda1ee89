package esxsim_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
)

// A snapshot on the simulator makes the empty delta ESXi would make, and
// removing it consolidates: the files on its datastore folder show it.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "esxsim-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sim, err := esxsim.Start(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	host, err := esx.Connect(ctx, esx.Config{URL: sim.URL(), Insecure: true, Datastore: esxsim.Datastore,
		ApplianceImage: esx.ApplianceImageNone})
	if err != nil {
		log.Fatal(err)
	}
	defer host.Close(ctx)

	disk := make([]byte, 4<<20)
	vm, err := host.CreateStandby(ctx, bootpoint.VMSpec{Name: "vm"}, []bootpoint.Delta{
		{Disk: 0, Size: int64(len(disk)), Extents: []aipimage.Extent{}, Source: bytes.NewReader(disk)}})
	if err != nil {
		log.Fatal(err)
	}
	files := func() {
		m, _ := filepath.Glob(filepath.Join(dir, "vm", "*.vmdk"))
		for i := range m {
			m[i] = filepath.Base(m[i])
		}
		fmt.Println(m)
	}
	files()
	s0, err := host.AddBootPoint(ctx, vm, nil, "s0", "")
	if err != nil {
		log.Fatal(err)
	}
	files()
	if err := host.RemoveSnapshot(ctx, vm, s0); err != nil {
		log.Fatal(err)
	}
	files()
	// Output:
	// [vm-flat.vmdk vm.vmdk]
	// [vm-000001-delta.vmdk vm-000001.vmdk vm-flat.vmdk vm.vmdk]
	// [vm-flat.vmdk vm.vmdk]
}
