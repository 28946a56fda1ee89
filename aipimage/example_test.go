package aipimage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/standbykit/standbykit/aipimage"
)

// A machine with one 1 MiB disk is backed up fully, then a few bytes
// change and an incremental records them.
func Example() {
	dir, _ := os.MkdirTemp("", "imageset")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	disk := make([]byte, 1<<20)
	copy(disk[4096:], "first backup")
	full, err := aipimage.WriteFull(ctx, filepath.Join(dir, "web-00000.skimg"),
		aipimage.Machine{Hostname: "web01", Firmware: aipimage.FirmwareBIOS},
		[]aipimage.DiskSource{{Info: aipimage.DiskInfo{Size: 1 << 20, SectorSize: 512}, Content: bytes.NewReader(disk)}},
		nil)
	if err != nil {
		log.Fatal(err)
	}

	copy(disk[300000:], "changed later")
	_, err = aipimage.WriteIncremental(ctx, filepath.Join(dir, "web-00001.skimg"), full,
		[]aipimage.DiskSource{{Content: bytes.NewReader(disk), Changed: []aipimage.Extent{{Off: 300000, Len: 13}}}},
		nil)
	if err != nil {
		log.Fatal(err)
	}

	set, err := aipimage.OpenDir(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	for k, info := range set.Points() {
		p, _ := set.Point(k)
		d, _ := p.Disk(0)
		buf := make([]byte, 13)
		d.ReadAt(buf, 300000)
		changed, _ := p.Changed(0)
		fmt.Printf("point %d (%s): %q, changed %v\n", info.Sequence, info.Machine.Hostname, buf, changed)
	}
	// Output:
	// point 0 (web01): "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", changed [{0 65536}]
	// point 1 (web01): "changed later", changed [{262144 65536}]
}

// A backup agent that tracks changed blocks itself streams them to a
// Writer, in ascending order.
func ExampleNewIncrementalWriter() {
	dir, _ := os.MkdirTemp("", "imageset")
	defer os.RemoveAll(dir)
	disks := []aipimage.DiskInfo{{Size: 4 << 20, SectorSize: 4096}}
	w, err := aipimage.NewFullWriter(filepath.Join(dir, "a-0.skimg"), aipimage.Machine{Hostname: "a"}, disks, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil { // an empty disk: no blocks at all
		log.Fatal(err)
	}

	inc, err := aipimage.NewIncrementalWriter(filepath.Join(dir, "a-1.skimg"), w.Info(), nil)
	if err != nil {
		log.Fatal(err)
	}
	block := bytes.Repeat([]byte{0xAB}, aipimage.DefaultBlockSize)
	for _, b := range []int64{3, 17, 40} {
		if err := inc.WriteBlock(0, b, block); err != nil {
			log.Fatal(err)
		}
	}
	if err := inc.Close(); err != nil {
		log.Fatal(err)
	}

	f, _ := aipimage.OpenFile(inc.Info().File, nil)
	defer f.Close()
	changed, _ := f.Changed(0)
	fmt.Println(f.Info().Sequence, changed)
	// Output: 1 [{196608 65536} {1114112 65536} {2621440 65536}]
}

// Opening a folder where the newest file is still being replicated: the
// usable chain ends before it, and the file is reported as pending.
func ExampleOpenDir_pending() {
	dir, _ := os.MkdirTemp("", "imageset")
	defer os.RemoveAll(dir)
	info, _ := aipimage.WriteFull(context.Background(), filepath.Join(dir, "b-0.skimg"), aipimage.Machine{Hostname: "b"},
		[]aipimage.DiskSource{{Info: aipimage.DiskInfo{Size: 1 << 20, SectorSize: 512}, Content: bytes.NewReader(make([]byte, 1<<20))}}, nil)
	// Half a file, as a copy in progress leaves it.
	whole, _ := os.ReadFile(info.File)
	os.WriteFile(filepath.Join(dir, "b-1.skimg"), whole[:len(whole)/2], 0o644)

	set, err := aipimage.OpenDir(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	fmt.Println(len(set.Points()), "usable,", len(set.Pending()), "pending")
	// Output: 1 usable, 1 pending
}

// A backup tool adds today's point to a set: an incremental after the
// newest point, storing only the blocks that differ from it.
func ExampleWriteIncrementalAfter() {
	dir, _ := os.MkdirTemp("", "imageset")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	disk := make([]byte, 1<<20)
	copy(disk, "monday")
	_, err := aipimage.WriteFull(ctx, filepath.Join(dir, "full.skimg"), aipimage.Machine{Hostname: "web01"},
		[]aipimage.DiskSource{{Info: aipimage.DiskInfo{Size: 1 << 20, SectorSize: 512}, Content: bytes.NewReader(disk)}}, nil)
	if err != nil {
		log.Fatal(err)
	}

	copy(disk[512<<10:], "tuesday")
	set, err := aipimage.OpenDir(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	info, err := aipimage.WriteIncrementalAfter(ctx, set, len(set.Points())-1, dir,
		[]aipimage.DiskSource{{Content: bytes.NewReader(disk)}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	f, _ := aipimage.OpenFile(info.File, nil)
	defer f.Close()
	changed, _ := f.Changed(0)
	fmt.Println("point", info.Sequence, "stores", changed)
	// Output: point 1 stores [{524288 65536}]
}

// The --parent flag of a command line names a point by its file.
func ExampleImageSet_IndexOf() {
	dir, _ := os.MkdirTemp("", "imageset")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "full.skimg")
	_, err := aipimage.WriteFull(context.Background(), file, aipimage.Machine{Hostname: "web01"},
		[]aipimage.DiskSource{{Info: aipimage.DiskInfo{Size: 1 << 20, SectorSize: 512}, Content: bytes.NewReader(make([]byte, 1<<20))}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	set, err := aipimage.OpenDir(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	k, err := set.IndexOf(file)
	fmt.Println(k, err)
	_, err = set.IndexOf(filepath.Join(dir, "elsewhere.skimg"))
	fmt.Println(errors.Is(err, aipimage.ErrNotInSet))
	// Output:
	// 0 <nil>
	// true
}

// A point's disk extracted as a raw file, for a tool that reads raw disks
// (a forensic mount, qemu-img convert).
func ExampleExtractSparse() {
	dir, _ := os.MkdirTemp("", "imageset")
	defer os.RemoveAll(dir)
	disk := make([]byte, 4<<20)
	copy(disk[1<<20:], "the only data")
	_, err := aipimage.WriteFull(context.Background(), filepath.Join(dir, "full.skimg"), aipimage.Machine{Hostname: "web01"},
		[]aipimage.DiskSource{{Info: aipimage.DiskInfo{Size: 4 << 20, SectorSize: 512}, Content: bytes.NewReader(disk)}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	set, err := aipimage.OpenDir(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	p, _ := set.Point(0)
	src, _ := p.Disk(0)
	raw := filepath.Join(dir, "disk0.raw")
	n, err := aipimage.ExtractSparse(context.Background(), raw, src)
	if err != nil {
		log.Fatal(err)
	}
	got, _ := os.ReadFile(raw)
	fmt.Println(n, bytes.Equal(got, disk))
	// Output: 4194304 true
}
