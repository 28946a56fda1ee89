package p2v

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkInspectWindowsDirty is BenchmarkInspectWindows with the dirty
// SYSTEM hive of a real Windows 10 and its two transaction logs (regipy's
// SYSTEM_B, 12 MiB, and 6 MiB of logs), LSI_SAS made demand-start so that
// a fix is planned over the replayed logs; it reports the bytes read,
// logs included:
//
//	go test ./p2v -run XXX -bench InspectWindows -benchtime 20x
func BenchmarkInspectWindowsDirty(b *testing.B) {
	system := setStart(b, realHive(b, "regipy/SYSTEM_B"), "LSI_SAS", 3)
	software, err := os.ReadFile(hive(b, windows10Software))
	require.NoError(b, err)
	vol := realVolume(b, map[string][]byte{
		"SYSTEM": system, "SOFTWARE": software,
		"SYSTEM.LOG1": realHive(b, "regipy/SYSTEM_B.LOG1"), "SYSTEM.LOG2": realHive(b, "regipy/SYSTEM_B.LOG2"),
	})
	const volSize = 2 << 30
	require.NoError(b, os.Truncate(vol, volSize))
	cmd := exec.Command("ntfsresize", "-f", "-s", "2G", vol)
	cmd.Stdin = strings.NewReader("y\n")
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, string(out))
	f, err := os.Open(vol)
	require.NoError(b, err)
	defer f.Close()

	mbr := make([]byte, 512)
	entry := mbr[446:]
	entry[0] = 0x80
	entry[4] = 0x07
	binary.LittleEndian.PutUint32(entry[8:], partStart/512)
	binary.LittleEndian.PutUint32(entry[12:], volSize/512)
	mbr[510], mbr[511] = 0x55, 0xaa
	disk := &countingDisk{mbr: mbr, vol: f, volSz: volSize, size: 64 << 30}

	var plan *Plan
	for b.Loop() {
		disk.bytes.Store(0)
		disk.reads.Store(0)
		plan, err = Inspector{}.InspectDisks(context.Background(), []Disk{disk})
		require.NoError(b, err)
	}
	require.Equal(b, ControllerLSILogicSAS, plan.Controller)
	require.NotEmpty(b, plan.Patches, "%v", plan.Warnings)
	require.Contains(b, plan.Patches[0].Why, "replayed SYSTEM.LOG1")
	b.ReportMetric(float64(disk.bytes.Load()), "bytes-read/op")
	b.ReportMetric(float64(disk.reads.Load()), "reads/op")
}
