// Command vmdkbench measures the vmdk writers against qemu-img on the same
// data in the same run:
//
//  1. streamOptimized: a mixed test disk (zeros, text-like and random
//     data; 4 GiB by default) converted by vmdk.WriteStreamOptimized and by
//     `qemu-img convert -O vmdk -o subformat=streamOptimized`; it prints
//     both throughputs, their ratio and the output sizes.
//  2. vmfsSparse delta: 1% of a 64 GiB disk changed in scattered 64 KiB
//     blocks, written by Delta.WriteExtent; it prints the throughput and
//     the peak Go heap.
//
// Run: go run ./internal/bench/vmdkbench [-size 4GiB] [-dir /tmp] [-rounds 2]
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/standbykit/standbykit/vmdk"
)

func main() {
	size := flag.Int64("size", 4<<30, "test disk size in bytes")
	dir := flag.String("dir", os.TempDir(), "folder for the test files")
	rounds := flag.Int("rounds", 2, "runs of each tool (the best is reported)")
	deltaDisk := flag.Int64("delta-disk", 64<<30, "virtual disk size for the delta figure")
	skipStream := flag.Bool("skip-stream", false, "only the delta figure")
	flag.Parse()
	work, err := os.MkdirTemp(*dir, "vmdkbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	fmt.Printf("GOMAXPROCS=%d\n", runtime.GOMAXPROCS(0))
	if !*skipStream {
		streamFigure(work, *size, *rounds)
	}
	deltaFigure(*deltaDisk)
}

func streamFigure(work string, size int64, rounds int) {
	raw := filepath.Join(work, "disk.raw")
	if err := writeMixedDisk(raw, size); err != nil {
		log.Fatal(err)
	}
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		log.Fatal("qemu-img is needed for the comparison (apt-get install qemu-utils)")
	}
	var ours, theirs []time.Duration
	var ourSize, theirSize int64
	for r := 0; r < rounds; r++ {
		out := filepath.Join(work, "ours.vmdk")
		start := time.Now()
		ourSize = writeOurs(raw, out, size)
		ours = append(ours, time.Since(start))
		os.Remove(out)

		out = filepath.Join(work, "qemu.vmdk")
		start = time.Now()
		cmd := exec.Command(qemu, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, out)
		if b, err := cmd.CombinedOutput(); err != nil {
			log.Fatalf("qemu-img: %v\n%s", err, b)
		}
		theirs = append(theirs, time.Since(start))
		st, err := os.Stat(out)
		if err != nil {
			log.Fatal(err)
		}
		theirSize = st.Size()
		os.Remove(out)
	}
	best := func(d []time.Duration) time.Duration { return slices.Min(d) }
	mbps := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e6 }
	fmt.Printf("streamOptimized, %d MiB mixed disk, best of %d:\n", size>>20, rounds)
	fmt.Printf("  standbykit: %6.1f s  %7.1f MB/s  output %d MiB  (runs %v)\n", best(ours).Seconds(), mbps(best(ours)), ourSize>>20, ours)
	fmt.Printf("  qemu-img:   %6.1f s  %7.1f MB/s  output %d MiB  (runs %v)\n", best(theirs).Seconds(), mbps(best(theirs)), theirSize>>20, theirs)
	fmt.Printf("  speed ratio standbykit/qemu-img: %.2fx   size ratio: %.3f\n",
		best(theirs).Seconds()/best(ours).Seconds(), float64(ourSize)/float64(theirSize))
}

func writeOurs(raw, out string, size int64) int64 {
	in, err := os.Open(raw)
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	f, err := os.Create(out)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	res, err := vmdk.WriteStreamOptimized(context.Background(), f, in, size, vmdk.StreamOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		log.Fatal(err)
	}
	return res.Size
}

// writeMixedDisk writes a disk of 1 MiB stretches: a third zeros, a third
// text-like, a third random (seeded, so every run sees the same data).
func writeMixedDisk(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	words := []string{"standby ", "kit ", "boot ", "point ", "\n", "0000 ", "ESXi ", "snapshot ", "the ", "image "}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		switch r.IntN(3) {
		case 0:
			clear(buf)
		case 1:
			for i := 0; i < len(buf); {
				i += copy(buf[i:], words[r.IntN(len(words))])
			}
		case 2:
			for i := 0; i+8 <= len(buf); i += 8 {
				binary.LittleEndian.PutUint64(buf[i:], r.Uint64())
			}
		}
		if _, err := f.Write(buf[:min(int64(len(buf)), size-off)]); err != nil {
			return err
		}
	}
	return f.Sync()
}

// patternDisk is a synthetic disk whose bytes are a cheap function of the
// offset: the delta figure measures the writer, not a source.
type patternDisk struct{}

func (patternDisk) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		p[i] = byte((off + int64(i)) * 7 >> 9)
	}
	return len(p), nil
}

func deltaFigure(diskSize int64) {
	const block = 64 << 10
	r := rand.New(rand.NewPCG(9, 9))
	blocks := diskSize / block
	picked := map[int64]bool{}
	for int64(len(picked)) < blocks/100 {
		picked[r.Int64N(blocks)] = true
	}
	var ranges []vmdk.Range
	for _, b := range slices.Sorted(maps.Keys(picked)) {
		ranges = append(ranges, vmdk.Range{Off: b * block, Len: block})
	}
	parent := vmdk.BaseDescriptor(vmdk.CreateVMFS, vmdk.ExtentVMFS, "sb-flat.vmdk", diskSize, "")
	var peak atomic.Uint64
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapAlloc
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	start := time.Now()
	d, err := vmdk.NewDelta("sb.vmdk", parent, ranges)
	if err != nil {
		log.Fatal(err)
	}
	n, err := d.WriteExtent(context.Background(), io.Discard, patternDisk{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	elapsed := time.Since(start)
	close(stop)
	data := int64(len(ranges)) * block
	fmt.Printf("vmfsSparse delta, %d GiB disk, %d scattered 64 KiB blocks (%d MiB, 1%%):\n", diskSize>>30, len(ranges), data>>20)
	fmt.Printf("  extent %d MiB (%.1f%% metadata) in %.2f s: %.0f MB/s of changed data; peak heap %.1f MiB above the %.1f MiB before\n",
		n>>20, 100*float64(n-data)/float64(n), elapsed.Seconds(), float64(data)/elapsed.Seconds()/1e6,
		float64(peak.Load()-min(peak.Load(), baseHeap))/(1<<20), float64(baseHeap)/(1<<20))
}
