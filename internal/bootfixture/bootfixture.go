// Package bootfixture builds, for tests, a small Linux system on a disk
// image that a PC boots from: an MBR with syslinux's boot code, one FAT
// partition holding syslinux, a Debian kernel (internal/kerneltest: the
// current linux-image-amd64 package, downloaded once into
// ~/.cache/standbykit) and an initramfs whose /init (fixtureinit, a
// static Go program) fills the screen with green text and idles.
//
// The same disk boots under EFI too when the syslinux-efi package is
// installed: the partition then also holds EFI/BOOT/BOOTX64.EFI
// (syslinux.efi), which OVMF starts from the removable-media path.
//
// The system needs no disk once booted: the firmware's disk driver reads
// syslinux, the kernel and the initramfs, so it boots on any controller
// the firmware knows (SeaBIOS: AHCI, NVMe, pvscsi, LSI SAS 1068).
//
// The tools come from Debian packages: sfdisk (fdisk), mkfs.fat
// (dosfstools), mcopy (mtools), syslinux and its MBR (syslinux,
// syslinux-common), and for EFI syslinux-efi. A missing one skips the
// test (fails it when STANDBYKIT_REQUIRE_ORACLES=1), as package oracle
// does. By hand:
//
//	truncate -s 32M disk.img
//	echo 'label: dos
//	start=2048, type=6, bootable' | sfdisk disk.img
//	mkfs.fat -F 16 --offset=2048 disk.img 31744
//	mcopy -i disk.img@@1M vmlinuz initrd.img syslinux.cfg ::
//	syslinux --install --offset 1048576 disk.img
//	dd if=/usr/lib/syslinux/mbr/mbr.bin of=disk.img bs=440 count=1 conv=notrunc
//	mmd -i disk.img@@1M ::EFI ::EFI/BOOT
//	mcopy -i disk.img@@1M /usr/lib/SYSLINUX.EFI/efi64/syslinux.efi ::EFI/BOOT/BOOTX64.EFI
//	mcopy -i disk.img@@1M /usr/lib/syslinux/modules/efi64/ldlinux.e64 syslinux.cfg ::EFI/BOOT/
package bootfixture

import (
	"bytes"
	"compress/gzip"
	"context"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/standbykit/standbykit/esx/appliance/image"
	"github.com/standbykit/standbykit/internal/kerneltest"
	"github.com/standbykit/standbykit/internal/oracle"
)

// InitPackage is the import path of the /init program.
const InitPackage = "github.com/standbykit/standbykit/internal/bootfixture/fixtureinit"

// InitColor is the colour /init's text has on the VGA console (bright
// green in the VGA palette), which firmware and kernel do not print in.
var InitColor = color.RGBA{0x55, 0xff, 0x55, 0xff}

// MBRFile is syslinux's MBR boot code (syslinux-common); EFIFiles are
// syslinux for EFI (syslinux-efi, syslinux-common).
var (
	MBRFile  = "/usr/lib/syslinux/mbr/mbr.bin"
	EFIFiles = map[string]string{
		"/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi":    "BOOTX64.EFI",
		"/usr/lib/syslinux/modules/efi64/ldlinux.e64": "ldlinux.e64",
	}
)

// Disk is a built system.
type Disk struct {
	// Path is the raw disk image, DiskSize bytes.
	Path string
	// EFI tells that it boots under EFI too.
	EFI bool
}

// Layout of the disk: one partition from 1 MiB to the end.
const (
	DiskSize        = 32 << 20
	PartitionOffset = 1 << 20
	PartitionSize   = DiskSize - PartitionOffset
)

// Cmdline is the kernel's command line: the console on the screen, and
// none but the gravest kernel messages (a panic's), so that no warning
// fills the screen before /init does — as RCU stall warnings, with their
// stack traces, would on a starved host.
const Cmdline = "console=tty0 loglevel=2 rcupdate.rcu_cpu_stall_suppress=1"

// Build writes the system's disk into dir; without syslinux-efi, one
// that boots under BIOS only (except in CI, where that fails the test).
func Build(t testing.TB, dir string) Disk {
	t.Helper()
	for _, tool := range []string{"sfdisk", "mkfs.fat", "mcopy", "mmd", "syslinux"} {
		oracle.Require(t, tool)
	}
	if _, err := os.Stat(MBRFile); err != nil {
		if os.Getenv("STANDBYKIT_REQUIRE_ORACLES") == "1" {
			t.Fatalf("syslinux's MBR is required here: %v (apt-get install syslinux-common)", err)
		}
		t.Skipf("no syslinux MBR (apt-get install syslinux-common): %v", err)
	}
	k := kerneltest.Kernel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	stage := t.TempDir()
	initrd := filepath.Join(stage, "initrd.img")
	buildInitramfs(ctx, t, stage, initrd)
	cfg := filepath.Join(stage, "syslinux.cfg")
	writeFile(t, cfg, []byte("DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL /vmlinuz\n  INITRD /initrd.img\n  APPEND "+Cmdline+"\n"))
	vmlinuz := filepath.Join(stage, "vmlinuz")
	kernel, err := os.ReadFile(k.Vmlinuz())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, vmlinuz, kernel)

	disk := filepath.Join(dir, "linux.img")
	f, err := os.Create(disk)
	if err == nil {
		err = f.Truncate(DiskSize)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	table := "label: dos\nstart=" + strconv.Itoa(PartitionOffset/512) + ", type=6, bootable\n"
	run(ctx, t, table, "sfdisk", "-q", disk)
	run(ctx, t, "", "mkfs.fat", "-F", "16", "-n", "SBKFIXTURE", "--offset="+strconv.Itoa(PartitionOffset/512), disk, strconv.Itoa(PartitionSize/1024))
	run(ctx, t, "", "mcopy", "-i", disk+"@@"+strconv.Itoa(PartitionOffset), vmlinuz, initrd, cfg, "::")
	run(ctx, t, "", "syslinux", "--install", "--offset", strconv.Itoa(PartitionOffset), disk)
	efi := true
	for from := range EFIFiles {
		if _, err := os.Stat(from); err != nil {
			if os.Getenv("STANDBYKIT_REQUIRE_ORACLES") == "1" {
				t.Fatalf("syslinux for EFI is required here: %v (apt-get install syslinux-efi)", err)
			}
			t.Logf("the test system boots under BIOS only: %v (apt-get install syslinux-efi)", err)
			efi = false
		}
	}
	if efi {
		fat := disk + "@@" + strconv.Itoa(PartitionOffset)
		run(ctx, t, "", "mmd", "-i", fat, "::EFI", "::EFI/BOOT")
		for from, to := range EFIFiles {
			run(ctx, t, "", "mcopy", "-i", fat, from, "::EFI/BOOT/"+to)
		}
		// syslinux.efi reads its configuration beside itself.
		run(ctx, t, "", "mcopy", "-i", fat, cfg, "::EFI/BOOT/syslinux.cfg")
	}

	// The MBR's boot code, before the disk signature and partition table.
	mbr, err := os.ReadFile(MBRFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(mbr) < 440 {
		t.Fatalf("%s: %d bytes, want 440", MBRFile, len(mbr))
	}
	if f, err = os.OpenFile(disk, os.O_WRONLY, 0); err == nil {
		_, err = f.WriteAt(mbr[:440], 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return Disk{Path: disk, EFI: efi}
}

// buildInitramfs writes a gzip-compressed newc archive holding /init
// (InitPackage, built static for linux/amd64) and /dev/console.
func buildInitramfs(ctx context.Context, t testing.TB, stage, out string) {
	t.Helper()
	// go test puts its go command on PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building /init: %v", err)
	}
	initBin := filepath.Join(stage, "init")
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, InitPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", InitPackage, err, out)
	}
	init, err := os.ReadFile(initBin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	c := image.NewCPIO(gz)
	for _, err := range []error{
		c.Dir("dev", 0o755),
		c.CharDevice("dev/console", 0o600, 5, 1),
		c.File("init", 0o755, init),
		c.Close(),
		gz.Close(),
	} {
		if err != nil {
			t.Fatalf("initramfs: %v", err)
		}
	}
	writeFile(t, out, buf.Bytes())
}

func run(ctx context.Context, t testing.TB, stdin, tool string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Stdin = bytes.NewBufferString(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
}

func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
