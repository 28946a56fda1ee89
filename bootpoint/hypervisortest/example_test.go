package hypervisortest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
)

// Memory is a Hypervisor in memory: the reference model of the contract,
// and a fast stand-in in tests of code that uses one.
func Example() {
	ctx := context.Background()
	hv := &hypervisortest.Memory{}
	disk := make([]byte, 1<<20)
	copy(disk, "boot sector")
	vm, err := hv.CreateStandby(ctx, bootpoint.VMSpec{Name: "web01-standby", DiskSizes: []int64{1 << 20}}, []bootpoint.Delta{
		{Disk: 0, Size: int64(len(disk)), Extents: []aipimage.Extent{{Off: 0, Len: 512}}, Source: bytes.NewReader(disk)},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := hv.AddBootPoint(ctx, vm, nil, "bootpoint 0000", ""); err != nil {
		log.Fatal(err)
	}

	// A guest writes to the standby: the next boot point is refused.
	if err := hv.WriteDisk(vm.Name, 0, 4096, []byte("a guest's write.")); err != nil {
		log.Fatal(err)
	}
	next := bytes.Clone(disk)
	copy(next[8192:], "next backup")
	change := bootpoint.Delta{Disk: 0, Size: int64(len(next)), Extents: []aipimage.Extent{{Off: 8192, Len: 512}},
		Source: bytes.NewReader(next), Base: bytes.NewReader(disk)}
	_, err = hv.AddBootPoint(ctx, vm, []bootpoint.Delta{change}, "bootpoint 0001", "")
	fmt.Println("diverged:", errors.Is(err, bootpoint.ErrDiverged))

	// Reverting to the boot point discards the guest's write.
	snaps, _ := hv.Snapshots(ctx, vm)
	if err := hv.Revert(ctx, vm, snaps[0]); err != nil {
		log.Fatal(err)
	}
	s1, err := hv.AddBootPoint(ctx, vm, []bootpoint.Delta{change}, "bootpoint 0001", "")
	if err != nil {
		log.Fatal(err)
	}
	d, err := hv.OpenDisk(ctx, vm, s1, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	got := make([]byte, d.Size())
	d.ReadAt(got, 0)
	fmt.Println("boot point 1 is the next backup:", bytes.Equal(got, next))
	// Output:
	// diverged: true
	// boot point 1 is the next backup: true
}
