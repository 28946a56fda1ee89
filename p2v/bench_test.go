package p2v

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// countingDisk is a 64 GiB disk: an MBR with one NTFS partition at 1 MiB
// backed by a file, zeros elsewhere. It counts what is read.
type countingDisk struct {
	mbr   []byte
	vol   *os.File
	volSz int64
	size  int64
	bytes atomic.Int64
	reads atomic.Int64
}

const partStart = 1 << 20

func (d *countingDisk) Size() int64 { return d.size }

func (d *countingDisk) ReadAt(p []byte, off int64) (int, error) {
	d.bytes.Add(int64(len(p)))
	d.reads.Add(1)
	clear(p)
	if off < int64(len(d.mbr)) {
		copy(p, d.mbr[off:])
	}
	lo, hi := max(off, partStart), min(off+int64(len(p)), partStart+d.volSz)
	if lo < hi {
		if _, err := d.vol.ReadAt(p[lo-off:hi-off], lo-partStart); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// BenchmarkInspectWindows inspects a 64 GiB disk whose 2 GiB NTFS volume
// holds the Windows hives; it reports the bytes inspection reads, which
// must be metadata only (a few MiB), not the volume:
//
//	go test ./p2v -run XXX -bench InspectWindows -benchtime 20x
func BenchmarkInspectWindows(b *testing.B) {
	for _, tool := range []string{"hivexsh", "ntfscp"} {
		oracle.Require(b, tool)
	}
	software := hive(b, softwareScript)
	system := hive(b, systemScript(false))
	plan := benchInspect(b, benchDisk(b, windowsVolumeFile(b, system, software, false)))
	require.Equal(b, ControllerLSILogicSAS, plan.Controller)
	require.NotEmpty(b, plan.Patches)
}

// benchDisk grows the NTFS volume file vol to 2 GiB (ntfsresize) and puts
// it at 1 MiB of a 64 GiB disk with an MBR.
func benchDisk(b *testing.B, vol string) *countingDisk {
	oracle.Require(b, "ntfsresize")
	const volSize = 2 << 30
	require.NoError(b, os.Truncate(vol, volSize))
	cmd := exec.Command("ntfsresize", "-f", "-s", "2G", vol)
	cmd.Stdin = strings.NewReader("y\n")
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, string(out))
	f, err := os.Open(vol)
	require.NoError(b, err)
	b.Cleanup(func() { f.Close() })

	mbr := make([]byte, 512)
	entry := mbr[446:]
	entry[0] = 0x80
	entry[4] = 0x07
	binary.LittleEndian.PutUint32(entry[8:], partStart/512)
	binary.LittleEndian.PutUint32(entry[12:], volSize/512)
	mbr[510], mbr[511] = 0x55, 0xaa
	return &countingDisk{mbr: mbr, vol: f, volSz: volSize, size: 64 << 30}
}

// benchInspect inspects disk b.N times and reports what one inspection
// reads.
func benchInspect(b *testing.B, disk *countingDisk) *Plan {
	var plan *Plan
	for b.Loop() {
		disk.bytes.Store(0)
		disk.reads.Store(0)
		var err error
		plan, err = Inspector{}.InspectDisks(context.Background(), []Disk{disk})
		require.NoError(b, err)
	}
	b.ReportMetric(float64(disk.bytes.Load()), "bytes-read/op")
	b.ReportMetric(float64(disk.reads.Load()), "reads/op")
	return plan
}
