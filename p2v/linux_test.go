package p2v

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// mkext4 makes an ext4 file system of size MiB holding files, with a
// known UUID.
func mkext4(t *testing.T, files map[string]string, uuid string, mib int) []byte {
	t.Helper()
	oracle.Require(t, "mkfs.ext4")
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	oracle.Run(t, "mkfs.ext4", "-q", "-F", "-U", uuid, "-d", root, img, strconv.Itoa(mib)+"M")
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	return b
}

func mkswap(t *testing.T, uuid string, mib int) []byte {
	t.Helper()
	oracle.Require(t, "mkswap")
	img := filepath.Join(t.TempDir(), "swap.img")
	require.NoError(t, os.WriteFile(img, make([]byte, mib<<20), 0o644))
	oracle.Run(t, "mkswap", "-U", uuid, img)
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	return b
}

// partitionedDisk lays volumes out with sfdisk: script partitions a disk
// of size MiB, and vols[i] goes into partition i+1.
func partitionedDisk(t *testing.T, script string, mib int, vols ...[]byte) []byte {
	t.Helper()
	sfdisk := requireSfdisk(t)
	path := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	require.NoError(t, os.Truncate(path, int64(mib)<<20))
	cmd := exec.Command(sfdisk, "-q", path)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	disk, err := os.ReadFile(path)
	require.NoError(t, err)
	table, err := ReadPartitionTable(bytes.NewReader(disk), int64(len(disk)), 512)
	require.NoError(t, err)
	for i, v := range vols {
		p := table.Partitions[i]
		require.LessOrEqual(t, int64(len(v)), p.Size)
		copy(disk[p.Start:], v)
	}
	return disk
}

// debugfsCat reads a file from partition n of a disk with debugfs, after
// checking the file system with e2fsck.
func debugfsCat(t *testing.T, disk []byte, n int, path string) string {
	t.Helper()
	oracle.Require(t, "debugfs")
	oracle.Require(t, "e2fsck")
	table, err := ReadPartitionTable(bytes.NewReader(disk), int64(len(disk)), 512)
	require.NoError(t, err)
	p := table.Partitions[n-1]
	img := filepath.Join(t.TempDir(), "part.img")
	require.NoError(t, os.WriteFile(img, disk[p.Start:p.Start+p.Size], 0o644))
	out, err := oracle.Output("e2fsck", "-fn", img)
	require.NoError(t, err, "e2fsck finds the patched file system damaged:\n%s", out)
	return string(oracle.Run(t, "debugfs", "-R", "cat "+path, img))
}

const (
	uuidBoot = "11111111-2222-3333-4444-555555555555"
	uuidRoot = "66666666-7777-8888-9999-aaaaaaaaaaaa"
	uuidSwap = "bbbbbbbb-cccc-dddd-eeee-ffffffffffff"
)

func TestInspectRHELLike(t *testing.T) {
	fstab := "# /etc/fstab\n/dev/sda2  /      ext4  defaults  1 1\n/dev/sda1  /boot  ext4  defaults  1 2\n/dev/sda3  swap   swap  defaults  0 0\ntmpfs /tmp tmpfs defaults 0 0\n"
	root := mkext4(t, map[string]string{
		"etc/os-release": "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"8.6\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 8.6 (Ootpa)\"\n",
		"etc/fstab":      fstab,
		"etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\nHWADDR=00:25:90:aa:bb:cc\nBOOTPROTO=static\nIPADDR=10.0.0.5\n",
		"etc/sysconfig/network-scripts/ifcfg-lo":   "DEVICE=lo\n",
		"etc/udev/rules.d/70-persistent-net.rules": "# generated\nSUBSYSTEM==\"net\", ACTION==\"add\", ATTR{address}==\"00:25:90:aa:bb:cc\", NAME=\"eth0\"\n",
	}, uuidRoot, 16)
	grub := "menuentry 'RHEL' {\n\tlinux /vmlinuz-4.18.0-372.el8.x86_64 root=/dev/sda2 ro crashkernel=auto\n\tinitrd /initramfs-4.18.0-372.el8.x86_64.img\n}\n"
	boot := mkext4(t, map[string]string{
		"grub2/grub.cfg":                      grub,
		"initramfs-4.18.0-372.el8.x86_64.img": mkInitramfs(t, "4.18.0-372.el8.x86_64", "kernel/drivers/message/fusion/mptsas.ko.xz", "kernel/drivers/ata/ahci.ko.xz"),
		"initramfs-4.18.0-80.el8.x86_64.img":  mkInitramfs(t, "4.18.0-80.el8.x86_64", "kernel/drivers/scsi/vmw_pvscsi.ko.xz"),
	}, uuidBoot, 8)
	disk := partitionedDisk(t, "label: dos\nsize=8M, type=83, bootable\nsize=16M, type=83\nsize=2M, type=82\n", 32, boot, root, mkswap(t, uuidSwap, 2))

	plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(disk)})
	require.NoError(t, err)
	require.Equal(t, FirmwareBIOS, plan.Firmware)
	require.Equal(t, "rhel8_64Guest", plan.GuestID)
	// The newest kernel's initramfs has LSI SAS and AHCI: LSI SAS first.
	require.Equal(t, ControllerLSILogicSAS, plan.Controller, "%v", plan.Warnings)
	require.NotEmpty(t, plan.Patches)

	patched := bytes.Clone(disk)
	for _, p := range plan.Patches {
		copy(patched[p.Offset:], p.Data)
	}
	wantFstab := "# /etc/fstab\nUUID=" + uuidRoot + "  /      ext4  defaults  1 1\nUUID=" + uuidBoot + "  /boot  ext4  defaults  1 2\nUUID=" + uuidSwap + "  swap   swap  defaults  0 0\ntmpfs /tmp tmpfs defaults 0 0\n"
	require.Equal(t, wantFstab, debugfsCat(t, patched, 2, "/etc/fstab"))
	require.Equal(t, strings.Replace(grub, "root=/dev/sda2", "root=UUID="+uuidRoot, 1), strings.TrimRight(debugfsCat(t, patched, 1, "/grub2/grub.cfg"), "\n")+"\n")
	require.Contains(t, debugfsCat(t, patched, 2, "/etc/sysconfig/network-scripts/ifcfg-eth0"), "\n#HWADDR=00:25:90:aa:bb:cc\n")
	require.Equal(t, "DEVICE=lo\n", debugfsCat(t, patched, 2, "/etc/sysconfig/network-scripts/ifcfg-lo"))
	require.Contains(t, debugfsCat(t, patched, 2, "/etc/udev/rules.d/70-persistent-net.rules"), "\n#SUBSYSTEM==")
	require.Equal(t, "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"8.6\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 8.6 (Ootpa)\"\n",
		debugfsCat(t, patched, 2, "/etc/os-release"), "files not planned to change stay as they were")
	for _, p := range plan.Patches {
		require.Contains(t, p.Why, "Red Hat Enterprise Linux 8.6")
	}
}

func TestInspectUbuntuLikeOnGPT(t *testing.T) {
	fstab := "UUID=" + uuidRoot + " / ext4 errors=remount-ro 0 1\n/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part3 none swap sw 0 0\n"
	netplan := "network:\n  ethernets:\n    eno1:\n      match:\n        macaddress: 00:25:90:aa:bb:cc\n      dhcp4: true\n"
	root := mkext4(t, map[string]string{
		"etc/os-release":          "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\nPRETTY_NAME=\"Ubuntu 22.04.3 LTS\"\n",
		"etc/fstab":               fstab,
		"etc/netplan/01-net.yaml": netplan,
		"boot/grub/grub.cfg":      "linux /boot/vmlinuz root=UUID=" + uuidRoot + " ro quiet\n",
	}, uuidRoot, 16)
	disk := partitionedDisk(t, "label: gpt\nsize=2M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nsize=16M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n", 24, nil, root)
	plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(disk)})
	require.NoError(t, err)
	require.Equal(t, FirmwareEFI, plan.Firmware)
	require.Equal(t, "ubuntu64Guest", plan.GuestID)
	require.Equal(t, ControllerLSILogicSAS, plan.Controller)
	require.Contains(t, strings.Join(plan.Warnings, "\n"), "no initramfs")
	require.Empty(t, plan.Patches, "nothing named by device that can be resolved")
	warnings := strings.Join(plan.Warnings, "\n")
	require.Contains(t, warnings, "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part3")
	require.Contains(t, warnings, "netplan/01-net.yaml matches interfaces by MAC")
}

func TestLinuxGuestIDs(t *testing.T) {
	for release, want := range map[string]string{
		"ID=rocky\nVERSION_ID=9.2":                "rockylinux_64Guest",
		"ID=centos\nVERSION_ID=7":                 "centos7_64Guest",
		"ID=debian\nVERSION_ID=12":                "debian12_64Guest",
		"ID=\"sles\"\nVERSION_ID=\"15.4\"":        "sles15_64Guest",
		"ID=\"ol\"\nVERSION_ID=\"8.7\"":           "oracleLinux8_64Guest",
		"ID=linuxmint\nID_LIKE=\"ubuntu debian\"": "ubuntu64Guest",
		"ID=raspbian\nID_LIKE=debian":             "debian11_64Guest",
		"ID=gentoo":                               "otherLinux64Guest",
	} {
		require.Equal(t, want, parseOSRelease([]byte(release)).guestID(), release)
	}
}

// mkInitramfs builds a gzip-compressed newc cpio archive with the cpio tool
// holding the given module files of one kernel.
func mkInitramfs(t *testing.T, kernel string, modules ...string) string {
	return mkInitramfsWith(t, "gzip -9", kernel, modules...)
}

// mkInitramfsWith is mkInitramfs with another compressor command; a
// module named "builtin:x" goes into modules.builtin instead.
func mkInitramfsWith(t *testing.T, compress, kernel string, modules ...string) string {
	t.Helper()
	oracle.Require(t, "cpio")
	oracle.Require(t, strings.Fields(compress)[0])
	root := t.TempDir()
	var builtin []string
	for _, m := range append(modules, "modules.dep") {
		if name, ok := strings.CutPrefix(m, "builtin:"); ok {
			builtin = append(builtin, name)
			continue
		}
		p := filepath.Join(root, "usr/lib/modules", kernel, m)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("module "+m), 0o644))
	}
	if builtin != nil {
		p := filepath.Join(root, "usr/lib/modules", kernel, "modules.builtin")
		require.NoError(t, os.WriteFile(p, []byte(strings.Join(builtin, "\n")+"\n"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "init"), []byte("#!/bin/sh\n"), 0o755))
	cmd := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet | "+compress)
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err)
	return string(out)
}

// Debian and SLES families: other device names, initramfs names,
// compressions and a built-in driver.
func TestInspectOtherFamilies(t *testing.T) {
	cases := []struct {
		name, release, fstab, bootFile, initramfs string
		guest                                     string
		controller                                Controller
		wantFstab                                 string
		warning                                   string
	}{
		{
			name:      "debian-cciss",
			release:   "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
			fstab:     "/dev/cciss/c0d0p1 / ext4 errors=remount-ro 0 1\n",
			bootFile:  "boot/initrd.img-6.1.0-13-amd64",
			initramfs: mkInitramfsWith(t, "zstd -q", "6.1.0-13-amd64", "kernel/drivers/ata/ahci.ko"),
			guest:     "debian12_64Guest", controller: ControllerSATA,
			wantFstab: "UUID=" + uuidRoot + " / ext4 errors=remount-ro 0 1\n",
		},
		{
			name:      "sles-by-id",
			release:   "NAME=\"SLES\"\nVERSION_ID=\"15.5\"\nID=\"sles\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP5\"\n",
			fstab:     "/dev/disk/by-id/scsi-3600508b1001c5e3f-part1 / ext4 defaults 0 1\n",
			bootFile:  "boot/initrd-5.14.21-150500.53-default",
			initramfs: mkInitramfsWith(t, "xz --check=crc32", "5.14.21-150500.53-default", "builtin:kernel/drivers/nvme/host/nvme.ko"),
			guest:     "sles15_64Guest", controller: ControllerNVMe,
			// One disk: the by-id name's partition number is enough.
			wantFstab: "UUID=" + uuidRoot + " / ext4 defaults 0 1\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := mkext4(t, map[string]string{"etc/os-release": tc.release, "etc/fstab": tc.fstab, tc.bootFile: tc.initramfs}, uuidRoot, 24)
			disk := partitionedDisk(t, "label: dos\nsize=24M, type=83, bootable\n", 32, root)
			plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(disk)})
			require.NoError(t, err)
			require.Equal(t, tc.guest, plan.GuestID)
			require.Equal(t, tc.controller, plan.Controller, "%v", plan.Warnings)
			if tc.warning != "" {
				require.Contains(t, strings.Join(plan.Warnings, "\n"), tc.warning)
			}
			if tc.wantFstab == "" {
				require.Empty(t, plan.Patches)
				return
			}
			patched := bytes.Clone(disk)
			for _, p := range plan.Patches {
				copy(patched[p.Offset:], p.Data)
			}
			require.Equal(t, tc.wantFstab, strings.TrimRight(debugfsCat(t, patched, 1, "/etc/fstab"), "\n")+"\n")
		})
	}
}
