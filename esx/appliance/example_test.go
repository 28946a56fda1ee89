package appliance_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/standbykit/standbykit/esx/appliance"
	"github.com/standbykit/standbykit/internal/extent"
)

// disk is a disk in memory, as the appliance would see a block device.
type disk struct{ b []byte }

func (d *disk) ReadAt(p []byte, off int64) (int, error)  { return copy(p, d.b[off:]), nil }
func (d *disk) WriteAt(p []byte, off int64) (int, error) { return copy(d.b[off:], p), nil }
func (d *disk) Size() int64                              { return int64(len(d.b)) }
func (d *disk) Sync() error                              { return nil }

// The host builds a payload for one disk's changes; the appliance applies
// it to the disks it sees, and the host reads its report.
func Example() {
	ctx := context.Background()
	current := make([]byte, 1<<20) // what the disk holds now
	next := bytes.Clone(current)
	copy(next[4096:], "the new boot point's bytes")

	var payload bytes.Buffer
	id, n, err := appliance.WritePayload(ctx, &payload, []appliance.Target{{
		Capacity: int64(len(current)),
		Extents:  []extent.Extent{{Off: 4096, Len: 512}},
		Source:   bytes.NewReader(next),
		Base:     bytes.NewReader(current),
	}})
	if err != nil {
		log.Fatal(err)
	}

	// Inside the appliance: the target disk, and another of another size.
	target, other := &disk{bytes.Clone(current)}, &disk{make([]byte, 2<<20)}
	var report bytes.Buffer
	res, err := appliance.Apply(ctx, bytes.NewReader(payload.Bytes()), n, []appliance.Disk{other, target}, &report)
	if err != nil {
		log.Fatal(err)
	}

	fmt.Println("written to disk", res.Targets[0], "bytes", res.BytesWritten)
	fmt.Println("disk holds the new bytes:", bytes.Equal(target.b, next))
	fmt.Println("report says done:", appliance.ReadReport(&report, id) == nil)
	// Output:
	// written to disk 1 bytes 512
	// disk holds the new bytes: true
	// report says done: true
}
