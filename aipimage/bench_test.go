package aipimage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pierrec/lz4/v4"
)

// The benchmarks share one fixture: a 256 MiB disk of mixed content
// (text-like, random, zero) in a full image plus 4 incrementals that each
// rewrite 2% of it.
const benchDiskSize = 256 << 20

type benchFixture struct {
	dir  string
	set  *ImageSet
	last int
}

var fixture *benchFixture

func loadFixture(b *testing.B) *benchFixture {
	b.Helper()
	if fixture != nil {
		return fixture
	}
	dir, err := os.MkdirTemp("", "aipimage-bench")
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	disk := make([]byte, benchDiskSize)
	fillMixed(r, disk)
	ctx := context.Background()
	info, err := WriteFull(ctx, filepath.Join(dir, "p00"+FileExt), Machine{Hostname: "bench"},
		[]DiskSource{{Info: DiskInfo{Size: benchDiskSize, SectorSize: 512}, Content: bytes.NewReader(disk)}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for k := 1; k <= 4; k++ {
		var changed []Extent
		for range 80 {
			off := r.Int64N(benchDiskSize - 64<<10)
			fillMixed(r, disk[off:off+64<<10])
			changed = append(changed, Extent{Off: off, Len: 64 << 10})
		}
		info, err = WriteIncremental(ctx, filepath.Join(dir, fmt.Sprintf("p%02d%s", k, FileExt)), info,
			[]DiskSource{{Content: bytes.NewReader(disk), Changed: changed}}, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	set, err := OpenDir(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	fixture = &benchFixture{dir: dir, set: set, last: len(set.Points()) - 1}
	return fixture
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture != nil {
		fixture.set.Close()
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// readPoint reads the newest point's disk sequentially in 1 MiB requests,
// each decoded by up to workers goroutines.
func readPoint(b *testing.B, fx *benchFixture, buf []byte, workers int) {
	p := &ImagePoint{layers: fx.set.chain[:fx.last+1], workers: workers}
	disk, _ := p.Disk(0)
	for off := int64(0); off < disk.Size(); off += int64(len(buf)) {
		if _, err := disk.ReadAt(buf, off); err != nil && err != io.EOF {
			b.Fatal(err)
		}
	}
}

// storedBlocks returns, for every block of the newest point, the stored
// payload the chain resolves it to (nil for zero blocks) and its flags.
func storedBlocks(b *testing.B, fx *benchFixture) ([][]byte, []uint16) {
	p, _ := fx.set.Point(fx.last)
	cr := &chainReader{layers: p.(*ImagePoint).layers, disk: 0, info: &fx.set.chain[0].info}
	curs := make([]layerCursor, len(cr.layers))
	n := cr.info.blocks(0)
	payloads, flags := make([][]byte, n), make([]uint16, n)
	for blk := range n {
		f, e, err := cr.find(curs, blk)
		if err != nil {
			b.Fatal(err)
		}
		if f == nil || e.flags&flagZero != 0 {
			continue
		}
		buf := make([]byte, blockHeaderLen+int(e.length))
		if _, err := f.r.ReadAt(buf, e.offset); err != nil {
			b.Fatal(err)
		}
		payloads[blk], flags[blk] = buf[blockHeaderLen:], e.flags
	}
	return payloads, flags
}

// bareDecompress is the floor: LZ4-decode the same payloads from memory.
func bareDecompress(b *testing.B, payloads [][]byte, flags []uint16, dst []byte) {
	for i, pl := range payloads {
		switch {
		case pl == nil:
			clear(dst)
		case flags[i]&flagLZ4 != 0:
			if _, err := lz4.UncompressBlock(pl, dst); err != nil {
				b.Fatal(err)
			}
		default:
			copy(dst, pl)
		}
	}
}

// BenchmarkPointRead measures a point's ReaderAt in sequential 1 MiB
// reads, decoding in the caller and on every CPU.
func BenchmarkPointRead(b *testing.B) {
	fx := loadFixture(b)
	buf := make([]byte, 1<<20)
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(benchDiskSize)
			for b.Loop() {
				readPoint(b, fx, buf, workers)
			}
		})
	}
}

// BenchmarkBareLZ4 decompresses the same blocks from memory.
func BenchmarkBareLZ4(b *testing.B) {
	fx := loadFixture(b)
	payloads, flags := storedBlocks(b, fx)
	dst := make([]byte, DefaultBlockSize)
	b.SetBytes(benchDiskSize)
	b.ResetTimer()
	for b.Loop() {
		bareDecompress(b, payloads, flags, dst)
	}
}

// BenchmarkReadVsLZ4 runs a point read and bare single-threaded
// decompression of the same blocks in the same iterations, and reports the
// ratio of their times (target: at most 1.3), for a point read decoding in
// the caller only (like for like) and on every CPU (the default).
func BenchmarkReadVsLZ4(b *testing.B) {
	fx := loadFixture(b)
	payloads, flags := storedBlocks(b, fx)
	dst := make([]byte, DefaultBlockSize)
	buf := make([]byte, 1<<20)
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			var tRead, tBare time.Duration
			b.SetBytes(benchDiskSize)
			for b.Loop() {
				t0 := time.Now()
				readPoint(b, fx, buf, workers)
				t1 := time.Now()
				bareDecompress(b, payloads, flags, dst)
				tRead += t1.Sub(t0)
				tBare += time.Since(t1)
			}
			b.ReportMetric(float64(tRead)/float64(tBare), "read/lz4")
			b.ReportMetric(float64(benchDiskSize)*float64(b.N)/tRead.Seconds()/1e6, "read-MB/s")
			b.ReportMetric(float64(benchDiskSize)*float64(b.N)/tBare.Seconds()/1e6, "lz4-MB/s")
		})
	}
}

// BenchmarkWriteFull measures writing a full image of the fixture's disk.
func BenchmarkWriteFull(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	disk := make([]byte, 64<<20)
	fillMixed(r, disk)
	dir := b.TempDir()
	b.SetBytes(int64(len(disk)))
	b.ResetTimer()
	i := 0
	for b.Loop() {
		path := filepath.Join(dir, fmt.Sprintf("w%d%s", i, FileExt))
		if _, err := WriteFull(context.Background(), path, Machine{Hostname: "bench"},
			[]DiskSource{{Info: DiskInfo{Size: int64(len(disk)), SectorSize: 512}, Content: bytes.NewReader(disk)}}, nil); err != nil {
			b.Fatal(err)
		}
		os.Remove(path)
		i++
	}
}
