// Command standbykit-writer is the /init of the writer appliance, the
// small Linux VM StandbyKit keeps on each ESXi host to write boot points
// into standby VMs' disks through ESXi's own disk stack (package
// appliance has the data path; build-appliance builds the boot files).
//
// # What it does
//
// The VM boots with no network and no root file system: the kernel
// unpacks the initramfs and runs this program as process 1, which
//
//  1. mounts /proc, /sys and devtmpfs on /dev, and opens the report's
//     serial port (standbykit.report, below) with output processing off;
//  2. runs itself again as a worker process, so that even a crash of the
//     worker ends the report with an error line; the worker
//  3. loads every module of the initramfs's lib/modules/<version>/
//     modules.dep, each after those it needs, with finit_module (module
//     parameters on the kernel command line, such as scsi_mod.scan=sync,
//     are passed on as modprobe would);
//  4. polls /sys/block for whole disks (not partitions, not CD-ROM
//     drives, loop or RAM devices) until one holds a payload
//     (appliance.PayloadID accepts it) and the set of disks has not
//     changed for standbykit.settle, or standbykit.wait has passed;
//  5. opens the payload disk read-only and every other disk read-write
//     with O_DIRECT (through aligned bounce buffers, so that what Apply
//     writes and reads back goes to the device, never the page cache),
//     and calls appliance.Apply, its JSON-lines report going through a
//     pipe to process 1, which copies each complete line to the serial
//     port;
//
// then process 1 writes an error line if the report does not end with a
// result ("done" or "error") — when the worker failed before Apply, or
// crashed —, a short human line on /dev/console, drains the serial port,
// syncs, and powers the VM off. It never drops to a shell and never
// waits for anyone: on ESXi the VM's power-off is how package esx learns
// that the report file is complete.
//
// # Kernel command line
//
//	standbykit.report=ttyS1   serial port of the report (default ttyS0:
//	                          the appliance VM's one serial port on ESXi,
//	                          backed by a datastore file)
//	standbykit.wait=60s       longest wait for the payload disk (default 60 s)
//	standbykit.settle=2s      how long the disks must stay the same once the
//	                          payload disk is there (default 2 s)
//	<module>.<param>=<value>  passed to that module when it is loaded
//
// On ESXi the console is the VM's screen (console=tty0, see
// image.ESXiCmdline) and the report goes to ttyS0. Under QEMU, the boot
// test (and the appliance benchmark, internal/bench/appliancebench, both
// through internal/appliancevm) puts the console on the first serial
// port and the report on the second: -serial stdio -serial
// file:report.txt, with "console=ttyS0 panic=-1 standbykit.report=ttyS1".
//
// # The boot test
//
// TestBoot (boot_linux_test.go) builds the boot files with image.Build,
// as build-appliance does, the kernel from Debian's kernel image package
// (STANDBYKIT_KERNEL_DEB, else apt-get download into
// $XDG_CACHE_HOME/standbykit or ~/.cache/standbykit), makes a payload
// with appliance.WritePayload for two raw disk images of random content
// (64 and 96 MiB), and boots the appliance in qemu-system-x86_64 under
// TCG with the payload and the two disks on each controller StandbyKit
// gives standby VMs in turn: VMware paravirtual SCSI (pvscsi), LSI Logic
// SAS (mptsas1068), AHCI and NVMe. After each power-off it checks the
// report with appliance.ReadReport, the console (every module loaded, the
// payload disk found, a power-off rather than a panic), that both images
// are now base ⊕ changes byte for byte and the payload image untouched;
// one more boot with a payload made for other content must report a
// guard mismatch and leave both images as they were; and one boots the
// ISO image (image.BuildISO) from the CD-ROM drive with ESXi's command
// line, the report on the one serial port, as on ESXi. The boots run in
// parallel, about 10 s each under TCG; the whole test takes about 40 s on
// two cores. It is skipped without qemu-system-x86_64 (Debian package
// qemu-system-x86) or a kernel package (the ISO boot without xorriso or
// isolinux), and fails instead in CI (STANDBYKIT_REQUIRE_ORACLES=1);
// -short skips it.
package main
