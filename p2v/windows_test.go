package p2v

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/standbykit/standbykit/p2v/ntfs"
)

// hive builds a registry hive with hivexsh from the regf package's small
// test hive (a root, ControlSet001\Services\pvscsi and Select).
func hive(t testing.TB, script string) string {
	t.Helper()
	oracle.Require(t, "hivexsh")
	src, err := os.ReadFile(filepath.Join("regf", "testdata", "small.hiv"))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "hive")
	require.NoError(t, os.WriteFile(path, src, 0o644))
	cmd := exec.Command("hivexsh", "-w", path)
	cmd.Stdin = strings.NewReader(script + "commit\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return path
}

// softwareScript is a SOFTWARE hive (made with hivexsh) naming a
// Windows Server 2019.
var softwareScript = softwareHiveScript("Windows Server 2019 Standard", "17763", "ServerStandard", "Server")

// softwareHiveScript is a hivexsh script that turns the empty hive into a
// SOFTWARE hive naming a Windows version, as its CurrentVersion key does.
func softwareHiveScript(product, build, edition, installation string) string {
	return `cd \
cd ControlSet001
del
cd \
cd Select
del
cd \
add Microsoft
cd Microsoft
add Windows NT
cd Windows NT
add CurrentVersion
cd CurrentVersion
setval 4
ProductName
string:` + product + `
CurrentBuildNumber
string:` + build + `
EditionID
string:` + edition + `
InstallationType
string:` + installation + `
`
}

// systemScript gives the machine LSI SAS and AHCI drivers (not started at
// boot) in two control sets; withPVSCSI keeps VMware's paravirtual one.
func systemScript(withPVSCSI bool) string {
	s := `cd \ControlSet001\Services
`
	if !withPVSCSI {
		s += `cd pvscsi
del
cd \ControlSet001\Services
`
	}
	for _, drv := range []string{"LSI_SAS", "storahci"} {
		s += "add " + drv + "\ncd " + drv + "\nsetval 2\nStart\ndword:0x00000003\nImagePath\nexpandstring:System32\\drivers\\" + strings.ToLower(drv) + ".sys\ncd ..\n"
	}
	// Disk drive class filters: partmgr has its service, ghostflt (a
	// removed backup agent's filter) does not.
	s += "add partmgr\ncd partmgr\nsetval 1\nStart\ndword:0\ncd ..\n"
	s += `cd \ControlSet001
add Control
cd Control
add Class
cd Class
add {4d36e967-e325-11ce-bfc1-08002be10318}
cd {4d36e967-e325-11ce-bfc1-08002be10318}
setval 1
UpperFilters
hex:7:` + utf16Multi("partmgr", "ghostflt") + `
cd \ControlSet001\Control
add Session Manager
cd Session Manager
add Environment
cd Environment
setval 1
PROCESSOR_ARCHITECTURE
string:AMD64
cd \Select
setval 3
Current
dword:0x00000001
Default
dword:0x00000001
LastKnownGood
dword:0x00000001
`
	return s
}

// readFixture returns the ntfs package's Windows-like fixture volume.
func readFixture(t testing.TB) []byte {
	t.Helper()
	zf, err := os.Open(filepath.Join("ntfs", "testdata", "windows.img.gz"))
	require.NoError(t, err)
	defer zf.Close()
	zr, err := gzip.NewReader(zf)
	require.NoError(t, err)
	vol, err := io.ReadAll(zr)
	require.NoError(t, err)
	return vol
}

// windowsVolumeFile writes the fixture volume with real hives copied in by
// ntfscp, and returns its path. With fragmented, the SYSTEM hive's
// clusters are interleaved with another file's first (ntfsfallocate, 4 KiB
// at a time), so the hive lies in many runs.
func windowsVolumeFile(t testing.TB, system, software string, fragmented bool) string {
	t.Helper()
	oracle.Require(t, "ntfscp")
	path := filepath.Join(t.TempDir(), "vol.img")
	require.NoError(t, os.WriteFile(path, readFixture(t), 0o644))
	if fragmented {
		fragment(t, path, "/Windows/System32/config", "SYSTEM", system)
	}
	oracle.Run(t, "ntfscp", "-f", "-q", path, system, "/Windows/System32/config/SYSTEM")
	oracle.Run(t, "ntfscp", "-f", "-q", path, software, "/Windows/System32/config/SOFTWARE")
	return path
}

// fragment frees dir/name and allocates it again cluster by cluster,
// alternating with a filler file, for as many clusters as src needs.
func fragment(t testing.TB, vol, dir, name, src string) {
	t.Helper()
	for _, tool := range []string{"ntfsls", "ntfstruncate", "ntfsfallocate"} {
		oracle.Require(t, tool)
	}
	var ino string
	for line := range strings.Lines(string(oracle.Run(t, "ntfsls", "-i", "-p", dir, vol))) {
		if f := strings.Fields(line); len(f) == 2 && f[1] == name {
			ino = f[0]
		}
	}
	require.NotEmpty(t, ino, "%s/%s not on the volume", dir, name)
	oracle.Run(t, "ntfstruncate", vol, ino, "0x80", "", "0")
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	oracle.Run(t, "ntfscp", "-q", vol, empty, "/filler")
	st, err := os.Stat(src)
	require.NoError(t, err)
	for off := int64(0); off < st.Size(); off += 4096 {
		o := strconv.FormatInt(off, 10)
		oracle.Run(t, "ntfsfallocate", "-o", o, "-l", "4096", vol, dir+"/"+name)
		oracle.Run(t, "ntfsfallocate", "-o", o, "-l", "4096", vol, "/filler")
	}
}

// windowsVolume is windowsVolumeFile's content.
func windowsVolume(t testing.TB, system, software string, fragmented bool) []byte {
	t.Helper()
	vol, err := os.ReadFile(windowsVolumeFile(t, system, software, fragmented))
	require.NoError(t, err)
	return vol
}

// diskWith partitions a disk with sfdisk and puts vol at the partition
// of the given number; it returns the disk and the partition's offset.
func diskWith(t *testing.T, script string, part int, vol []byte) ([]byte, int64) {
	t.Helper()
	sfdisk := requireSfdisk(t)
	path := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	require.NoError(t, os.Truncate(path, 24<<20))
	cmd := exec.Command(sfdisk, "-q", path)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	disk, err := os.ReadFile(path)
	require.NoError(t, err)
	table, err := ReadPartitionTable(bytes.NewReader(disk), int64(len(disk)), 512)
	require.NoError(t, err)
	var start int64 = -1
	for _, p := range table.Partitions {
		if p.Number == part {
			start = p.Start
		}
	}
	require.GreaterOrEqual(t, start, int64(0))
	copy(disk[start:], vol)
	return disk, start
}

func TestInspectWindows(t *testing.T) {
	oracle.Require(t, "hivexget")
	oracle.Require(t, "ntfscat")
	oracle.Require(t, "hivexml")
	software := hive(t, softwareScript)
	cases := []struct {
		name       string
		table      string
		part       int
		pvscsi     bool
		firmware   Firmware
		controller Controller
		driver     string
		fragmented bool
	}{
		{"mbr-lsi", "label: dos\nstart=2048, size=16384, type=7, bootable\n", 1, false, FirmwareBIOS, ControllerLSILogicSAS, "LSI_SAS", false},
		{"gpt-pvscsi", "label: gpt\nstart=2048, size=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=4096, size=32, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE\nstart=8192, size=16384, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n", 3, true, FirmwareEFI, ControllerPVSCSI, "pvscsi", false},
		{"mbr-lsi-fragmented-hive", "label: dos\nstart=2048, size=16384, type=7, bootable\n", 1, false, FirmwareBIOS, ControllerLSILogicSAS, "LSI_SAS", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			system := hive(t, systemScript(tc.pvscsi))
			vol := windowsVolume(t, system, software, tc.fragmented)
			disk, start := diskWith(t, tc.table, tc.part, vol)

			plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(disk)})
			require.NoError(t, err)
			require.Equal(t, tc.firmware, plan.Firmware)
			require.Equal(t, "windows2019srv_64Guest", plan.GuestID)
			require.Equal(t, tc.controller, plan.Controller)
			require.NotEmpty(t, plan.Patches, "%+v", plan.Warnings)
			var whys []string
			for _, p := range plan.Patches {
				whys = append(whys, p.Why)
			}
			require.Contains(t, strings.Join(whys, "\n"), tc.driver+" driver boot-start")
			require.Contains(t, strings.Join(whys, "\n"), "names ghostflt, which has no driver service")
			require.NotContains(t, strings.Join(whys, "\n"), "names partmgr")

			// Every patched byte lies in the SYSTEM hive's data on the volume.
			v, err := ntfs.Open(bytes.NewReader(vol), int64(len(vol)))
			require.NoError(t, err)
			f, err := v.Lookup("/Windows/System32/config/SYSTEM")
			require.NoError(t, err)
			ranges, err := f.Ranges()
			require.NoError(t, err)
			if tc.fragmented {
				require.Greater(t, len(ranges), 2, "the hive must lie in several runs")
			}
			for _, p := range plan.Patches {
				inside := false
				for _, r := range ranges {
					if p.Offset >= start+r.Offset && p.End() <= start+r.End() {
						inside = true
					}
				}
				require.True(t, inside, "patch at %d outside the SYSTEM hive", p.Offset)
			}

			// Apply; the oracles read the result.
			patched := bytes.Clone(disk)
			for _, p := range plan.Patches {
				copy(patched[p.Offset:], p.Data)
			}
			volPath := filepath.Join(t.TempDir(), "patched.img")
			require.NoError(t, os.WriteFile(volPath, patched[start:start+int64(len(vol))], 0o644))
			oracle.Require(t, "ntfsfix")
			oracle.Run(t, "ntfsfix", "-n", volPath)
			sysPath := filepath.Join(t.TempDir(), "SYSTEM")
			require.NoError(t, os.WriteFile(sysPath, oracle.Run(t, "ntfscat", volPath, "/Windows/System32/config/SYSTEM"), 0o644))
			got := strings.TrimSpace(string(oracle.Run(t, "hivexget", sysPath, `ControlSet001\Services\`+tc.driver, "Start")))
			require.Equal(t, "0", got)
			// The other driver is untouched.
			require.Equal(t, "3", strings.TrimSpace(string(oracle.Run(t, "hivexget", sysPath, `ControlSet001\Services\storahci`, "Start"))))
			// In the hive, only that one value changed (hivexml with cell
			// offsets stripped), and the SOFTWARE hive is byte-identical.
			origVol := filepath.Join(t.TempDir(), "orig.img")
			require.NoError(t, os.WriteFile(origVol, vol, 0o644))
			origSys := filepath.Join(t.TempDir(), "SYSTEM")
			require.NoError(t, os.WriteFile(origSys, oracle.Run(t, "ntfscat", origVol, "/Windows/System32/config/SYSTEM"), 0o644))
			before, after := hiveLines(t, origSys), hiveLines(t, sysPath)
			// The filter list lost one string element.
			before = slices.DeleteFunc(before, func(l string) bool { return strings.Contains(l, "ghostflt") })
			require.Equal(t, len(before), len(after))
			var changed []string
			for i := range before {
				if before[i] != after[i] {
					changed = append(changed, before[i]+" → "+after[i])
				}
			}
			// Two lines: the filter list's data run got shorter, and Start.
			require.Len(t, changed, 2, "%v", changed)
			require.Regexp(t, `byte_run .*len="40".* → .*len="22"`, changed[0])
			require.Contains(t, changed[1], `key="Start" value="3"`)
			filters := string(oracle.Run(t, "hivexget", sysPath, `ControlSet001\Control\Class\{4d36e967-e325-11ce-bfc1-08002be10318}`, "UpperFilters"))
			require.Contains(t, filters, "partmgr")
			require.NotContains(t, filters, "ghostflt")
			require.Equal(t, oracle.Run(t, "ntfscat", origVol, "/Windows/System32/config/SOFTWARE"),
				oracle.Run(t, "ntfscat", volPath, "/Windows/System32/config/SOFTWARE"))

			// Inspection is deterministic: the plan of the same bytes is the same.
			again, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(disk)})
			require.NoError(t, err)
			require.Equal(t, plan.Digest(), again.Digest())
		})
	}
}

func TestInspectNoWindows(t *testing.T) {
	plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(make([]byte, 4<<20))})
	require.NoError(t, err)
	require.Empty(t, plan.Patches)
	require.Contains(t, strings.Join(plan.Warnings, "\n"), "no Windows or Linux system")
}

// hiveLines is hivexml's dump of a hive, one element a line, without the
// cell offsets that an edit may move.
func hiveLines(t *testing.T, path string) []string {
	t.Helper()
	xml := string(oracle.Run(t, "hivexml", path))
	xml = regexp.MustCompile(` (hivex:)?offset="[^"]*"`).ReplaceAllString(xml, "")
	return strings.Split(strings.ReplaceAll(xml, "><", ">\n<"), "\n")
}

// utf16Multi encodes a REG_MULTI_SZ for hivexsh's hex: syntax.
func utf16Multi(names ...string) string {
	var b []string
	for _, n := range append(names, "") {
		for _, c := range n + "\x00" {
			b = append(b, fmt.Sprintf("%02x,00", c))
		}
	}
	return strings.Join(b, ",")
}
