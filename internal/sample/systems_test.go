package sample

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/standbykit/standbykit/p2v"
)

const (
	rootUUID = "2f6d4a61-83c4-4d5e-9b1a-7c0e5d3a9f12"
	swapUUID = "8b1c2d3e-4f50-4617-a829-3b4c5d6e7f80"
)

// volumeFile writes the partition of disk that match selects to a file,
// for the oracle tools.
func volumeFile(t *testing.T, disk []byte, match func(p2v.Partition) bool) string {
	t.Helper()
	p, err := partition(bytes.NewReader(disk), int64(len(disk)), match)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "volume")
	require.NoError(t, os.WriteFile(path, disk[p.Start:p.Start+p.Size], 0o644))
	return path
}

// debugfsCat reads a file of an ext4 volume with e2fsprogs.
func debugfsCat(t *testing.T, vol, name string) string {
	t.Helper()
	return string(oracle.Run(t, "debugfs", "-R", "cat "+name, vol))
}

// systemHive extracts the SYSTEM hive of an NTFS volume with ntfs-3g.
func systemHive(t *testing.T, vol string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "SYSTEM")
	require.NoError(t, os.WriteFile(path, oracle.Run(t, "ntfscat", vol, "/"+systemPath), 0o644))
	return path
}

func hivexget(t *testing.T, hive, key, value string) string {
	t.Helper()
	return strings.TrimSpace(string(oracle.Run(t, "hivexget", hive, `\`+key, value)))
}

// Every point of a sample system is a consistent file system whose
// files changed as the day's use says, read back through the image
// chain; e2fsprogs, ntfs-3g and hivex are the judges.
func TestSystemPointsChangeFilesInPlace(t *testing.T) {
	for _, tool := range []string{"e2fsck", "debugfs", "ntfscat", "ntfsfix", "hivexget"} {
		oracle.Require(t, tool)
	}
	ctx := context.Background()
	for _, sys := range Systems() {
		t.Run(sys.String(), func(t *testing.T) {
			s, err := Write(ctx, t.TempDir(), Options{System: sys, Incrementals: 3, Seed: 7, KeepContent: true})
			require.NoError(t, err)
			require.Len(t, s.Points, 4)
			set, err := aipimage.OpenDir(s.Dir, nil)
			require.NoError(t, err)
			defer set.Close()
			for k, disk := range s.Disks {
				p, err := set.Point(k)
				require.NoError(t, err)
				d, err := p.Disk(0)
				require.NoError(t, err)
				got := make([]byte, d.Size())
				_, err = d.ReadAt(got, 0)
				require.NoError(t, err)
				require.True(t, bytes.Equal(disk, got), "point %d: the image chain does not give back the disk", k)
				if k > 0 {
					require.False(t, bytes.Equal(s.Disks[k-1], disk), "point %d changed nothing", k)
				}
				checkPoint(t, sys, k, disk)
			}
		})
	}
}

func checkPoint(t *testing.T, sys System, k int, disk []byte) {
	t.Helper()
	switch sys {
	case Linux:
		vol := volumeFile(t, disk, linuxRoot)
		oracle.Run(t, "e2fsck", "-fn", vol)
		require.Contains(t, debugfsCat(t, vol, "/etc/fstab"), "/dev/sda1       /               ext4")
		syslog := debugfsCat(t, vol, syslogPath)
		require.Len(t, syslog, 128<<10)
		require.Equal(t, k > 0, strings.Contains(syslog, fmt.Sprintf("Nov %02d ", 1+k)), "point %d: the day's log lines", k)
		table := debugfsCat(t, vol, tablePath)
		require.Equal(t, k > 0, strings.Contains(table, fmt.Sprintf("|day %d\n", k)), "point %d: the day's table rows", k)
	case Windows:
		vol := volumeFile(t, disk, windowsC)
		oracle.Run(t, "ntfsfix", "-n", vol)
		hive := systemHive(t, vol)
		require.Equal(t, fmt.Sprint(0x7c+k), hivexget(t, hive, bootIDKey, "BootId"))
		require.Equal(t, "3", hivexget(t, hive, lsiSASKey, "Start"))
		ledger := string(oracle.Run(t, "ntfscat", vol, "/"+ledgerPath))
		require.Len(t, ledger, 192<<10)
		require.Equal(t, k > 0, strings.Contains(ledger, fmt.Sprintf("2026-11-%02d,", 1+k)), "point %d: the day's ledger rows", k)
	}
}

// P2V finds real work on every point of the sample systems, and the
// patched disk is what the guest needs, as the oracle tools read it.
func TestSystemPlans(t *testing.T) {
	for _, tool := range []string{"e2fsck", "debugfs", "ntfscat", "hivexget"} {
		oracle.Require(t, tool)
	}
	ctx := context.Background()
	for _, sys := range Systems() {
		t.Run(sys.String(), func(t *testing.T) {
			s, err := Write(ctx, t.TempDir(), Options{System: sys, Incrementals: 2, KeepContent: true})
			require.NoError(t, err)
			set, err := aipimage.OpenDir(s.Dir, nil)
			require.NoError(t, err)
			defer set.Close()
			var plan *p2v.Plan
			for k := range set.Points() {
				p, err := set.Point(k)
				require.NoError(t, err)
				plan, err = p2v.Inspector{}.Inspect(ctx, p)
				require.NoError(t, err)
				require.Empty(t, plan.Warnings)
				var whys []string
				for _, pt := range plan.Patches {
					whys = append(whys, pt.Why)
				}
				why := strings.Join(whys, "\n")
				switch sys {
				case Linux:
					require.Equal(t, p2v.FirmwareBIOS, plan.Firmware)
					require.Equal(t, "debian12_64Guest", plan.GuestID)
					require.Equal(t, p2v.ControllerSATA, plan.Controller)
					for _, file := range []string{"/etc/fstab", "/boot/grub/grub.cfg", "70-persistent-net.rules"} {
						require.Contains(t, why, file)
					}
				case Windows:
					require.Equal(t, p2v.FirmwareEFI, plan.Firmware)
					require.Equal(t, "windows2019srv_64Guest", plan.GuestID)
					require.Equal(t, p2v.ControllerLSILogicSAS, plan.Controller)
					require.Contains(t, why, "Windows Server 2019 Standard: make the LSI_SAS driver boot-start")
					require.NotContains(t, why, "Windows Windows")
					require.Contains(t, why, "names bkagtflt, which has no driver service")
				}
			}

			// The newest point, with its patches: the excerpts change, and
			// the oracles agree.
			last := s.Disks[len(s.Disks)-1]
			patched := bytes.Clone(last)
			for _, pt := range plan.Patches {
				copy(patched[pt.Offset:], pt.Data)
			}
			before, err := sys.Excerpts(bytes.NewReader(last), int64(len(last)))
			require.NoError(t, err)
			after, err := sys.Excerpts(bytes.NewReader(patched), int64(len(patched)))
			require.NoError(t, err)
			switch sys {
			case Linux:
				require.Equal(t, []Excerpt{
					{"/etc/fstab", "/dev/sda1 / ext4 errors=remount-ro 0 1"},
					{"/boot/grub/grub.cfg", "linux /boot/vmlinuz-6.1.0-13-amd64 root=/dev/sda1 ro quiet"},
				}, before)
				require.Equal(t, []Excerpt{
					{"/etc/fstab", "UUID=" + rootUUID + " / ext4 errors=remount-ro 0 1"},
					{"/boot/grub/grub.cfg", "linux /boot/vmlinuz-6.1.0-13-amd64 root=UUID=" + rootUUID + " ro quiet"},
				}, after)
				vol := volumeFile(t, patched, linuxRoot)
				oracle.Run(t, "e2fsck", "-fn", vol)
				fstab := debugfsCat(t, vol, "/etc/fstab")
				require.Contains(t, fstab, "UUID="+swapUUID+"       none            swap")
				require.NotContains(t, fstab, "/dev/sda")
				require.Contains(t, debugfsCat(t, vol, "/etc/udev/rules.d/70-persistent-net.rules"), `#SUBSYSTEM=="net"`)
			case Windows:
				require.Equal(t, []Excerpt{
					{`HKLM\SYSTEM\` + lsiSASKey, "Start = 3"},
					{`HKLM\SYSTEM\` + diskClassKey, "UpperFilters = partmgr, bkagtflt"},
				}, before)
				require.Equal(t, []Excerpt{
					{`HKLM\SYSTEM\` + lsiSASKey, "Start = 0"},
					{`HKLM\SYSTEM\` + diskClassKey, "UpperFilters = partmgr"},
				}, after)
				hive := systemHive(t, volumeFile(t, patched, windowsC))
				require.Equal(t, "0", hivexget(t, hive, lsiSASKey, "Start"))
				require.Equal(t, "3", hivexget(t, hive, `ControlSet001\Services\storahci`, "Start"))
			}
		})
	}
}

// Extend keeps changing a system's files, not random bytes.
func TestExtendSystem(t *testing.T) {
	oracle.Require(t, "ntfscat")
	oracle.Require(t, "hivexget")
	ctx := context.Background()
	dir := t.TempDir()
	_, err := Write(ctx, dir, Options{System: Windows, Incrementals: 1})
	require.NoError(t, err)
	added, err := Extend(ctx, dir, 2, 3, nil)
	require.NoError(t, err)
	require.Len(t, added, 2)
	require.Equal(t, 3, added[1].Sequence)
	set, err := aipimage.OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	p, err := set.Point(3)
	require.NoError(t, err)
	d, err := p.Disk(0)
	require.NoError(t, err)
	disk := make([]byte, d.Size())
	_, err = d.ReadAt(disk, 0)
	require.NoError(t, err)
	require.Equal(t, Windows, systemOf(disk))
	oracle.Require(t, "ntfsfix")
	vol := volumeFile(t, disk, windowsC)
	oracle.Run(t, "ntfsfix", "-n", vol)
	require.Equal(t, fmt.Sprint(0x7c+3), hivexget(t, systemHive(t, vol), bootIDKey, "BootId"))
}

func TestSystemDiskSize(t *testing.T) {
	_, err := Write(context.Background(), t.TempDir(), Options{System: Linux, DiskSize: 64 << 20})
	require.ErrorContains(t, err, "16777216")
}
