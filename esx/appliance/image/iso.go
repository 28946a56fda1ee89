package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ISOFile is the name of the bootable image BuildISO writes.
const ISOFile = "appliance.iso"

// The boot loader files BuildISO takes from Debian's isolinux and
// syslinux-common packages (installed, never copied into the repository).
var (
	IsolinuxBin = "/usr/lib/ISOLINUX/isolinux.bin"
	LdlinuxC32  = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
)

// BuildISO writes Out/appliance.iso: a BIOS-bootable ISO 9660 image (El
// Torito, no emulation) in which isolinux boots the kernel and initramfs
// Build wrote into dir with the kernel command line cmdline
// (ESXiCmdline for ESXi: a VM boots it from its CD-ROM drive, which the
// writer ignores). It needs xorriso and isolinux.
func BuildISO(ctx context.Context, dir, cmdline string) (OutFile, error) {
	if strings.ContainsAny(cmdline, "\n\r") {
		return OutFile{}, fmt.Errorf("image: kernel command line on several lines")
	}
	xorriso, err := exec.LookPath("xorriso")
	if err != nil {
		return OutFile{}, fmt.Errorf("image: building the ISO needs xorriso (apt-get install xorriso): %w", err)
	}
	stage, err := os.MkdirTemp(dir, ".iso-")
	if err != nil {
		return OutFile{}, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(stage)
	copyFile := func(from, to string) error {
		data, err := os.ReadFile(from)
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return fmt.Errorf("image: %w", err)
		}
		return os.WriteFile(to, data, 0o644)
	}
	for from, to := range map[string]string{
		IsolinuxBin:                    "isolinux/isolinux.bin",
		LdlinuxC32:                     "isolinux/ldlinux.c32",
		filepath.Join(dir, KernelFile): KernelFile,
		filepath.Join(dir, InitrdFile): InitrdFile,
	} {
		if err := copyFile(from, filepath.Join(stage, to)); err != nil {
			if strings.HasPrefix(from, "/usr/lib/") {
				err = fmt.Errorf("%w (apt-get install isolinux syslinux-common)", err)
			}
			return OutFile{}, err
		}
	}
	cfg := "DEFAULT standbykit\nPROMPT 0\nTIMEOUT 0\n\nLABEL standbykit\n" +
		"  KERNEL /" + KernelFile + "\n  INITRD /" + InitrdFile + "\n  APPEND " + cmdline + "\n"
	if err := os.WriteFile(filepath.Join(stage, "isolinux/isolinux.cfg"), []byte(cfg), 0o644); err != nil {
		return OutFile{}, fmt.Errorf("image: %w", err)
	}
	out := filepath.Join(dir, ISOFile)
	tmp := out + ".tmp"
	defer os.Remove(tmp)
	if _, err := run(ctx, "", xorriso, "-as", "mkisofs", "-quiet", "-o", tmp, "-V", "STANDBYKIT", "-R", "-J",
		"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
		"-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", stage); err != nil {
		return OutFile{}, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return OutFile{}, fmt.Errorf("image: %w", err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return OutFile{}, fmt.Errorf("image: %w", err)
	}
	return OutFile{Path: out, Size: fi.Size()}, nil
}
