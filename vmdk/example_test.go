package vmdk_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"testing/fstest"

	"github.com/standbykit/standbykit/vmdk"
)

// A base disk written as streamOptimized, one delta on top of it, and the
// chain read back.
func Example() {
	ctx := context.Background()
	disk := make([]byte, 4<<20)
	copy(disk[1<<20:], "boot sector of the full image")

	var base bytes.Buffer
	res, err := vmdk.WriteStreamOptimized(ctx, &base, bytes.NewReader(disk), int64(len(disk)), vmdk.StreamOptions{ExtentName: "sb.vmdk"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("base grains:", res.Grains)

	// The incremental changed one sector.
	copy(disk[3<<20:], "changed by the incremental")
	delta, err := vmdk.NewDelta("sb.vmdk", res.Descriptor, []vmdk.Range{{Off: 3 << 20, Len: 512}})
	if err != nil {
		log.Fatal(err)
	}
	var extent bytes.Buffer
	if _, err := delta.WriteExtent(ctx, &extent, bytes.NewReader(disk), nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println(delta.DescriptorName, delta.ExtentName)

	fsys := fstest.MapFS{
		"sb.vmdk":            {Data: base.Bytes()},
		delta.DescriptorName: {Data: delta.DescriptorText()},
		delta.ExtentName:     {Data: extent.Bytes()},
	}
	chain, err := vmdk.OpenChain(fsys, delta.DescriptorName)
	if err != nil {
		log.Fatal(err)
	}
	defer chain.Close()
	got := make([]byte, chain.Size())
	if _, err := chain.ReadAt(got, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Println("links:", len(chain.Links()), "identical:", bytes.Equal(got, disk))
	// Output:
	// base grains: 1
	// sb-000001.vmdk sb-000001-delta.vmdk
	// links: 2 identical: true
}
