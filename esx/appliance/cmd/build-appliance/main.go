// Command build-appliance builds the writer appliance's boot files from
// Debian packages:
//
//	go run ./esx/appliance/cmd/build-appliance --out DIR [--kernel-deb FILE | --kernel-root DIR] [--cache DIR]
//	    [--modules a,b] [--uncompressed] [--iso [--cmdline "..."]]
//
// It takes the kernel from Debian's kernel image package: the .deb given
// with --kernel-deb, or the one linux-image-amd64 depends on (apt-cache
// depends; linux-image-6.1.0-<abi>-amd64 on Debian 12), fetched with
// apt-get download into the cache (--cache, default
// $XDG_CACHE_HOME/standbykit or ~/.cache/standbykit; run apt-get update
// first), and unpacked there once with dpkg-deb -x. --kernel-root takes
// an already unpacked one (boot/vmlinuz-<v> and lib/modules/<v>/).
//
// It builds the appliance's /init program, standbykit-writer, static
// (CGO_ENABLED=0 go build), and writes into DIR:
//
//   - vmlinuz, the kernel, as packaged;
//   - initrd.img, a gzip-compressed newc cpio archive (--uncompressed: a
//     plain one) holding /init, the mount points /dev, /proc and /sys,
//     /dev/console, and under lib/modules/<v>/ the driver modules of the
//     disk controllers StandbyKit gives standby VMs (vmw_pvscsi, mptsas,
//     ahci, nvme) and sd_mod, with every module they need — the
//     dependency closure read from the modules' .modinfo (the package has
//     no modules.dep: depmod makes it at install time), modules
//     decompressed if the package compresses them —, a modules.dep
//     listing just those, and the kernel's modules.builtin.
//
// With --iso it also writes appliance.iso, a BIOS-bootable ISO 9660 image
// (xorriso, El Torito with isolinux from Debian's isolinux and
// syslinux-common packages, installed, never copied into the repository)
// that boots the kernel and initramfs with --cmdline, by default ESXi's
// (image.ESXiCmdline: console on the VM's screen, report on its one
// serial port): the appliance VM boots it from its CD-ROM drive.
//
// It then prints the files with their sizes, the modules in load order,
// and the kernel command line. The packages it builds on are in
// esx/appliance/image (the cpio writer, the module selection, the ISO).
//
// # Booting it
//
// Any BIOS or UEFI loader that boots a Linux kernel with an initrd will
// do; with QEMU:
//
//	qemu-system-x86_64 -machine pc -accel tcg -m 256 -nodefaults -display none -no-reboot \
//	  -kernel DIR/vmlinuz -initrd DIR/initrd.img \
//	  -append "console=ttyS0 panic=-1 standbykit.report=ttyS1" \
//	  -serial file:console.log -serial file:report.txt \
//	  -device pvscsi,id=c -drive if=none,id=p,format=raw,file=payload.bin -device scsi-hd,bus=c.0,drive=p ...
//
// The boot test in esx/appliance/cmd/standbykit-writer does exactly that
// on each controller, and boots the ISO image too; the program's
// documentation tells what the appliance does once booted and its
// command-line parameters.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/standbykit/standbykit/esx/appliance/image"
)

func main() {
	var opts image.Options
	var modules string
	flag.StringVar(&opts.Out, "out", "", "directory to write vmlinuz and initrd.img to (required)")
	flag.StringVar(&opts.KernelDeb, "kernel-deb", "", "Debian kernel image package (.deb) to take the kernel from (default: apt-get download the current one)")
	flag.StringVar(&opts.KernelRoot, "kernel-root", "", "unpacked kernel package to take the kernel from (boot/vmlinuz-<v>, lib/modules/<v>/)")
	flag.StringVar(&opts.CacheDir, "cache", "", "cache for kernel packages and their extraction (default $XDG_CACHE_HOME/standbykit)")
	flag.StringVar(&modules, "modules", strings.Join(image.DefaultModules, ","), "driver modules to load, comma-separated (their dependencies are added)")
	flag.StringVar(&opts.Writer, "writer", "", "prebuilt /init program (default: go build "+image.WriterPackage+")")
	flag.BoolVar(&opts.Uncompressed, "uncompressed", false, "write the initramfs as a plain cpio archive")
	iso := flag.Bool("iso", false, "also write "+image.ISOFile+", a BIOS-bootable ISO image (needs xorriso, isolinux, syslinux-common)")
	cmdline := flag.String("cmdline", image.ESXiCmdline, "kernel command line of the ISO image")
	flag.Parse()
	if opts.Out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	for _, m := range strings.Split(modules, ",") {
		if m = strings.TrimSpace(m); m != "" {
			opts.Modules = append(opts.Modules, m)
		}
	}
	opts.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := image.Build(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build-appliance:", err)
		os.Exit(1)
	}
	if *iso {
		f, err := image.BuildISO(ctx, opts.Out, *cmdline)
		if err != nil {
			fmt.Fprintln(os.Stderr, "build-appliance:", err)
			os.Exit(1)
		}
		res.Files = append(res.Files, f)
	}
	fmt.Printf("kernel %s\n", res.Kernel.Version)
	for _, f := range res.Files {
		rel, err := filepath.Rel(".", f.Path)
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = f.Path
		}
		fmt.Printf("%-40s %10d bytes\n", rel, f.Size)
	}
	fmt.Printf("modules (load order): %s\n", strings.Join(res.Modules, " "))
	if len(res.Builtin) > 0 {
		fmt.Printf("built into the kernel: %s\n", strings.Join(res.Builtin, " "))
	}
	if *iso {
		fmt.Printf("ISO kernel command line: %s\n", *cmdline)
	} else {
		fmt.Printf("kernel command line on ESXi: %s\n", image.ESXiCmdline)
	}
}
