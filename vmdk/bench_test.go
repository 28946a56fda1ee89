package vmdk

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"
)

// BenchmarkStreamOptimized compares the zlib implementations the writer can
// use, on the same mixed 64 MiB disk, at the default level with all CPUs:
//
//	go test ./vmdk -run XXX -bench StreamOptimized -benchtime 5x
//
// The 4 GiB comparison with qemu-img is internal/bench/vmdkbench.
func BenchmarkStreamOptimized(b *testing.B) {
	disk := mixedDisk(rand.New(rand.NewPCG(1, 1)), 64<<20)
	for _, impl := range []struct {
		name   string
		stdlib bool
	}{{"klauspost", false}, {"stdlib", true}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(disk)))
			var size int64
			for b.Loop() {
				res, err := WriteStreamOptimized(context.Background(), io.Discard, bytes.NewReader(disk), int64(len(disk)), StreamOptions{stdlib: impl.stdlib})
				if err != nil {
					b.Fatal(err)
				}
				size = res.Size
			}
			b.ReportMetric(float64(size)/float64(len(disk)), "out/in")
		})
	}
}

// BenchmarkChainRead reads a base and three deltas back sequentially.
func BenchmarkChainRead(b *testing.B) {
	dir := b.TempDir()
	r := rand.New(rand.NewPCG(2, 2))
	size := int64(64 << 20)
	disk := mixedDisk(r, size)
	parent, name := writeFlatBase(b, dir, "sb.vmdk", disk), "sb.vmdk"
	for range 3 {
		d := writeDelta(b, dir, name, parent, disk, randomChanges(r, size))
		parent, name = d.Descriptor, d.DescriptorName
	}
	b.SetBytes(size)
	for b.Loop() {
		readChain(b, dir, name)
	}
}
