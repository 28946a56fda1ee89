// Package image builds the writer appliance's boot files — a Linux kernel
// and an initramfs whose /init is the standbykit-writer program — from
// Debian's kernel image package: Build, which the build-appliance
// command runs (see its documentation for the command line and what it
// writes).
//
// Its pieces: CPIO writes newc cpio archives, the initramfs format;
// Kernel finds a kernel package's vmlinuz and modules, and Select picks
// the modules the appliance loads with every module they need (from
// modules.dep when the package has one, else from each module's
// .modinfo), decompressing .ko.xz, .ko.zst and .ko.gz files;
// DownloadKernel and ExtractKernel fetch the current kernel package with
// apt-get download and unpack it with dpkg-deb -x into a cache; BuildISO
// wraps the boot files into a BIOS-bootable ISO image (xorriso, isolinux)
// for the appliance VM's CD-ROM drive.
//
// The package knows nothing of ESXi: it imports neither package esx nor
// govmomi.
package image
