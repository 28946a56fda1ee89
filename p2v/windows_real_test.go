package p2v

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/standbykit/standbykit/p2v/regf"
)

// realHive returns a hive or log written by Windows, from the regf
// package's testdata (see its README for the sources and licences).
func realHive(t testing.TB, name string) []byte {
	t.Helper()
	path := filepath.Join("regf", "testdata", name+".xz")
	if b, err := exec.Command("xz", "-dc", path).Output(); err == nil {
		return b
	}
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r, err := xz.NewReader(f)
	require.NoError(t, err)
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

// windows10Software is a SOFTWARE hive (made with hivexsh) naming the
// Windows 10 1709 that regipy's SYSTEM_B comes from.
var windows10Software = softwareHiveScript("Windows 10 Pro", "16299", "Professional", "Client")

// realVolume is the fixture volume grown to 48 MiB (ntfsresize) with the
// given files copied into \Windows\System32\config by ntfscp; it returns
// the volume's path.
func realVolume(t testing.TB, files map[string][]byte) string {
	t.Helper()
	for _, tool := range []string{"ntfscp", "ntfsresize", "ntfsfix"} {
		oracle.Require(t, tool)
	}
	dir := t.TempDir()
	vol := filepath.Join(dir, "vol.img")
	require.NoError(t, os.WriteFile(vol, readFixture(t), 0o644))
	require.NoError(t, os.Truncate(vol, 48<<20))
	cmd := exec.Command("ntfsresize", "-f", "-s", "48M", vol)
	cmd.Stdin = strings.NewReader("y\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	// ntfsresize leaves the volume marked for a check; clear the mark.
	oracle.Run(t, "ntfsfix", "-d", vol)
	for name, data := range files {
		src := filepath.Join(dir, "src")
		require.NoError(t, os.WriteFile(src, data, 0o644))
		oracle.Run(t, "ntfscp", "-f", "-q", vol, src, "/Windows/System32/config/"+name)
	}
	return vol
}

// mbrDisk puts a volume at 1 MiB on a disk with an MBR.
// inspectRealVolume inspects a disk holding realVolume(files).
func inspectRealVolume(t *testing.T, files map[string][]byte) *Plan {
	t.Helper()
	b, err := os.ReadFile(realVolume(t, files))
	require.NoError(t, err)
	d, _ := mbrDisk(t, b)
	plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(d)})
	require.NoError(t, err)
	return plan
}

func mbrDisk(t testing.TB, vol []byte) ([]byte, int64) {
	const start = 1 << 20
	disk := make([]byte, start+len(vol))
	e := disk[446:]
	e[0], e[4] = 0x80, 0x07
	binary.LittleEndian.PutUint32(e[8:], start/512)
	binary.LittleEndian.PutUint32(e[12:], uint32(len(vol)/512))
	disk[510], disk[511] = 0x55, 0xaa
	copy(disk[start:], vol)
	return disk, start
}

// patchedFile applies a plan to a disk and returns a file of the patched
// volume as ntfscat reads it.
func patchedFile(t testing.TB, disk []byte, start int64, volSize int, plan *Plan, name string) []byte {
	t.Helper()
	patched := bytes.Clone(disk)
	for _, p := range plan.Patches {
		copy(patched[p.Offset:], p.Data)
	}
	path := filepath.Join(t.TempDir(), "patched.img")
	require.NoError(t, os.WriteFile(path, patched[start:start+int64(volSize)], 0o644))
	return oracle.Run(t, "ntfscat", path, "/Windows/System32/config/"+name)
}

// setStart changes a service's Start in a hive file in place, leaving
// the base block (and so a dirty hive's state) alone.
func setStart(t testing.TB, hiveFile []byte, service string, v uint32) []byte {
	t.Helper()
	rec, err := regf.Recover(hiveFile, nil)
	require.NoError(t, err)
	h, err := regf.Open(rec.File)
	require.NoError(t, err)
	k, err := h.Key(`ControlSet001\Services\` + service)
	require.NoError(t, err)
	val, err := k.Value("Start")
	require.NoError(t, err)
	ps, err := h.SetDWORD(`ControlSet001\Services\`+service, "Start", v)
	require.NoError(t, err)
	out := bytes.Clone(hiveFile)
	for _, p := range ps {
		require.GreaterOrEqual(t, p.Offset, int64(4096), "%s\\Start at %d", service, val.Offset())
		copy(out[p.Offset:], p.Data)
	}
	return out
}

func hivexValue(t testing.TB, hive []byte, key, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hive")
	require.NoError(t, os.WriteFile(path, hive, 0o644))
	return strings.TrimSpace(string(oracle.Run(t, "hivexget", path, key, value)))
}

// regfexportStart reads a service's Start with libregf's regfexport, a
// second independent reader.
func regfexportStart(t testing.TB, hive []byte, service string) string {
	t.Helper()
	oracle.Require(t, "regfexport")
	path := filepath.Join(t.TempDir(), "hive")
	require.NoError(t, os.WriteFile(path, hive, 0o644))
	out := string(oracle.Run(t, "regfexport", "-K", `ControlSet001\Services\`+service, path))
	m := regexp.MustCompile(`Value: \d+ Start\nType: [^\n]*\nData size: 4\nData: (\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "regfexport shows no Start:\n%s", out)
	return m[1]
}

// TestInspectRealDirtySystem inspects a volume holding the dirty SYSTEM
// hive of a real Windows 10 with its two transaction logs (regipy's
// SYSTEM_B): the inspector reads the hive Windows would load.
func TestInspectRealDirtySystem(t *testing.T) {
	for _, tool := range []string{"hivexget", "hivexml", "ntfscat"} {
		oracle.Require(t, tool)
	}
	system := realHive(t, "regipy/SYSTEM_B")
	log1, log2 := realHive(t, "regipy/SYSTEM_B.LOG1"), realHive(t, "regipy/SYSTEM_B.LOG2")
	require.True(t, regf.NeedsRecovery(system))
	software, err := os.ReadFile(hive(t, windows10Software))
	require.NoError(t, err)

	t.Run("as published: nothing to fix, nothing written", func(t *testing.T) {
		plan := inspectRealVolume(t, map[string][]byte{"SYSTEM": system, "SYSTEM.LOG1": log1, "SYSTEM.LOG2": log2, "SOFTWARE": software})
		require.Equal(t, "windows9_64Guest", plan.GuestID)
		require.Equal(t, ControllerLSILogicSAS, plan.Controller)
		// LSI_SAS is boot-start already, every storage filter has its
		// service: Windows replays its own logs at boot.
		require.Empty(t, plan.Patches)
		require.Empty(t, plan.Warnings)
	})

	// The machine as it would be had LSI_SAS been demand-start: a Start
	// value in a page the logs do not rewrite, the hive still dirty.
	system3 := setStart(t, system, "LSI_SAS", 3)
	require.True(t, regf.NeedsRecovery(system3))
	// Log names in other case: NTFS looks names up case-insensitively.
	vol := realVolume(t, map[string][]byte{"SYSTEM": system3, "system.log1": log1, "System.Log2": log2, "SOFTWARE": software})
	volBytes, err := os.ReadFile(vol)
	require.NoError(t, err)
	disk, start := mbrDisk(t, volBytes)

	t.Run("dirty hive gets its fix over the replayed logs", func(t *testing.T) {
		plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(disk)})
		require.NoError(t, err)
		require.Empty(t, plan.Warnings)
		require.Equal(t, ControllerLSILogicSAS, plan.Controller)
		var whys []string
		for _, p := range plan.Patches {
			whys = append(whys, p.Why)
		}
		why := strings.Join(whys, "\n")
		require.Contains(t, why, "LSI_SAS driver boot-start")
		require.Contains(t, why, "replayed SYSTEM.LOG1 (log entries 2107-2110, 10 dirty pages) and SYSTEM.LOG2 (log entries 2111-2130, 305 dirty pages)")
		pages := regexp.MustCompile(`\((\d+) pages of 4 KiB`).FindStringSubmatch(why)
		require.NotNil(t, pages)

		// What the oracles read back after the patches.
		patched := patchedFile(t, disk, start, len(volBytes), plan, "SYSTEM")
		require.Len(t, patched, len(system3), "the hive file keeps its size")
		require.False(t, regf.NeedsRecovery(patched), "Windows has nothing left to replay")
		require.Equal(t, "0", hivexValue(t, patched, `ControlSet001\Services\LSI_SAS`, "Start"))
		require.Equal(t, "0", regfexportStart(t, patched, "LSI_SAS"))
		require.Equal(t, "0", regfexportStart(t, patched, "storahci"))

		// The patched file is the replayed hive with the one fix: hivexml
		// sees the same tree but for Start.
		rec, err := regf.Recover(system3, []regf.LogFile{{Name: "SYSTEM.LOG1", Data: log1}, {Name: "SYSTEM.LOG2", Data: log2}})
		require.NoError(t, err)
		recPath := filepath.Join(t.TempDir(), "recovered")
		require.NoError(t, os.WriteFile(recPath, rec.File, 0o644))
		patchedPath := filepath.Join(t.TempDir(), "patched")
		require.NoError(t, os.WriteFile(patchedPath, patched, 0o644))
		before, after := hiveLines(t, recPath), hiveLines(t, patchedPath)
		require.Equal(t, len(before), len(after))
		var changed []string
		for i := range before {
			if before[i] != after[i] {
				changed = append(changed, before[i]+" → "+after[i])
			}
		}
		require.Len(t, changed, 1, "%v", changed)
		require.Contains(t, changed[0], `key="Start" value="3"`)
		// And it holds what the logs added: more keys than the file had.
		origPath := filepath.Join(t.TempDir(), "orig")
		require.NoError(t, os.WriteFile(origPath, system3, 0o644))
		require.Greater(t, len(after), len(hiveLines(t, origPath)))

		// The pages written: every 4 KiB page of the file that differs.
		n := 0
		for off := 0; off < len(patched); off += 4096 {
			if !bytes.Equal(patched[off:off+4096], system3[off:off+4096]) {
				n++
			}
		}
		require.Equal(t, pages[1], strconv.Itoa(n))

		// The logs on the volume are left as they were.
		require.Equal(t, log1, patchedFile(t, disk, start, len(volBytes), plan, "system.log1"))

		// Inspecting the patched disk finds nothing more to do.
		again := bytes.Clone(disk)
		for _, p := range plan.Patches {
			copy(again[p.Offset:], p.Data)
		}
		plan2, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(again)})
		require.NoError(t, err)
		require.Empty(t, plan2.Patches)
	})

	t.Run("dirty SOFTWARE hive without logs is read as it is", func(t *testing.T) {
		soft := bytes.Clone(software)
		binary.LittleEndian.PutUint32(soft[4:], binary.LittleEndian.Uint32(soft[8:])+1)
		binary.LittleEndian.PutUint32(soft[508:], regf.Checksum(soft))
		require.True(t, regf.NeedsRecovery(soft))
		plan := inspectRealVolume(t, map[string][]byte{"SYSTEM": system, "SYSTEM.LOG1": log1, "SYSTEM.LOG2": log2, "SOFTWARE": soft})
		require.Empty(t, plan.Warnings)
		require.Equal(t, "windows9_64Guest", plan.GuestID, "the version is read")
	})

	t.Run("damaged log: no fix", func(t *testing.T) {
		bad := bytes.Clone(log2)
		bad[len(bad)/3] ^= 0x55 // inside an entry followed by others
		plan := inspectRealVolume(t, map[string][]byte{"SYSTEM": system3, "SYSTEM.LOG1": log1, "SYSTEM.LOG2": bad, "SOFTWARE": software})
		require.Empty(t, plan.Patches)
		require.Contains(t, strings.Join(plan.Warnings, "\n"), "cannot be replayed")
		require.Contains(t, strings.Join(plan.Warnings, "\n"), "damaged or inconsistent transaction log")
	})

	t.Run("replay that grows the hive: no fix", func(t *testing.T) {
		plan := inspectRealVolume(t, map[string][]byte{"SYSTEM": system3, "SYSTEM.LOG1": log1, "SYSTEM.LOG2": growingLog(t, log2, len(system3)), "SOFTWARE": software})
		require.Empty(t, plan.Patches)
		warn := strings.Join(plan.Warnings, "\n")
		require.Contains(t, warn, "LSI_SAS driver boot-start")
		require.Contains(t, warn, "cannot be made offline: replaying the SYSTEM hive's transaction logs grows it from 12845056 to")
	})

	t.Run("logs of another hive: no fix", func(t *testing.T) {
		plan := inspectRealVolume(t, map[string][]byte{
			"SYSTEM": system3, "SOFTWARE": software,
			"SYSTEM.LOG1": realHive(t, "regipy/UsrClass.dat.LOG1"), "SYSTEM.LOG2": realHive(t, "regipy/UsrClass.dat.LOG2"),
		})
		require.Empty(t, plan.Patches)
		require.Contains(t, strings.Join(plan.Warnings, "\n"), "transaction log of another hive")
	})
}

// TestInspectRealCleanSystem inspects the clean SYSTEM hive of a real
// Windows 7 SP1 (regipy's SYSTEM): with an AHCI controller asked for, its
// msahci driver is made boot-start in both control sets.
func TestInspectRealCleanSystem(t *testing.T) {
	for _, tool := range []string{"hivexget", "ntfscat"} {
		oracle.Require(t, tool)
	}
	system := realHive(t, "regipy/SYSTEM")
	require.False(t, regf.NeedsRecovery(system))
	vol := realVolume(t, map[string][]byte{"SYSTEM": system})
	volBytes, err := os.ReadFile(vol)
	require.NoError(t, err)
	disk, start := mbrDisk(t, volBytes)

	plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(disk)})
	require.NoError(t, err)
	require.Equal(t, ControllerLSILogicSAS, plan.Controller)
	require.Empty(t, plan.Patches, "LSI_SAS is boot-start already")

	plan, err = Inspector{Controller: ControllerSATA}.InspectDisks(context.Background(), []Disk{bytes.NewReader(disk)})
	require.NoError(t, err)
	require.NotEmpty(t, plan.Patches, "%v", plan.Warnings)
	for _, p := range plan.Patches {
		require.Contains(t, p.Why, "make the msahci driver boot-start (Start=0) in ControlSet001, ControlSet002")
		require.NotContains(t, p.Why, "transaction logs")
	}
	patched := patchedFile(t, disk, start, len(volBytes), plan, "SYSTEM")
	for _, set := range []string{"ControlSet001", "ControlSet002"} {
		require.Equal(t, "3", hivexValue(t, system, set+`\Services\msahci`, "Start"))
		require.Equal(t, "0", hivexValue(t, patched, set+`\Services\msahci`, "Start"))
	}
	require.Equal(t, "0", regfexportStart(t, patched, "msahci"))
	require.Equal(t, system[:4096], patched[:4096], "a clean hive's base block is not touched")
}

// growingLog appends to a real new-format log one more entry, as Windows
// writes it when a hive grows: the bins size past the end of a primary
// file of fileSize bytes, and a new empty bin there.
func growingLog(t testing.TB, log []byte, fileSize int) []byte {
	t.Helper()
	le := binary.LittleEndian
	// Walk the entries to the end of the last one.
	off, seq, bins := 512, uint32(0), uint32(0)
	for off+40 <= len(log) && string(log[off:off+4]) == "HvLE" {
		seq, bins = le.Uint32(log[off+12:]), le.Uint32(log[off+16:])
		off += int(le.Uint32(log[off+4:]))
	}
	newBins := uint32(fileSize) // bins end 4096 bytes past the file
	hbin := make([]byte, newBins-bins)
	copy(hbin, "hbin")
	le.PutUint32(hbin[4:], bins)
	le.PutUint32(hbin[8:], uint32(len(hbin)))
	le.PutUint32(hbin[32:], uint32(len(hbin)-32)) // one free cell
	size := (40 + 8 + len(hbin) + 511) &^ 511
	e := make([]byte, size)
	copy(e, "HvLE")
	le.PutUint32(e[4:], uint32(size))
	le.PutUint32(e[12:], seq+1)
	le.PutUint32(e[16:], newBins)
	le.PutUint32(e[20:], 1)
	le.PutUint32(e[40:], bins)
	le.PutUint32(e[44:], uint32(len(hbin)))
	copy(e[48:], hbin)
	le.PutUint64(e[24:], regf.LogEntryHash(e[40:]))
	le.PutUint64(e[32:], regf.LogEntryHash(e[:32]))
	return append(bytes.Clone(log[:off]), e...)
}
