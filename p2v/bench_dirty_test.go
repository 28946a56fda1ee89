package p2v

import (
	"os"
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
	plan := benchInspect(b, benchDisk(b, vol))
	require.Equal(b, ControllerLSILogicSAS, plan.Controller)
	require.NotEmpty(b, plan.Patches, "%v", plan.Warnings)
	require.Contains(b, plan.Patches[0].Why, "replayed SYSTEM.LOG1")
}
