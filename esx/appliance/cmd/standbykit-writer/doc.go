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
//  5. opens the payload disks read-only and every other disk read-write
//     with O_DIRECT (through aligned bounce buffers, so that what Apply
//     writes and reads back goes to the device, never the page cache),
//     each knowing its SCSI host adapter and its unit where it has one
//     (below), and calls appliance.ApplyBatch, which applies each
//     payload to the disks on its adapter (to every disk when there is
//     one payload), its JSON-lines report going through a pipe to
//     process 1, which copies each complete line to the serial port;
//
// then process 1 writes an error line if the report does not end with a
// result ("done" or "error") — when the worker failed before Apply, or
// crashed —, a short human line on /dev/console, drains the serial port,
// syncs, and powers the VM off. It never drops to a shell and never
// waits for anyone: on ESXi the VM's power-off is how package esx learns
// that the report file is complete.
//
// # SCSI units
//
// Package esx attaches each payload disk at unit 0 of a pvscsi controller
// of the appliance (one controller per payload: a run may write the boot
// points of up to four standby VMs) and the payload's target disks at
// units 1, 2, … of the same controller (skipping 7, the controller's
// own), and names each target's unit in the payload,
// so that Apply tells apart disks the guards cannot: two of a capacity
// whose content over the ranges written is the same (two empty data
// disks, say). The writer's disks report their units
// (appliance.Addressed) by this rule (scsiaddr.go):
//
//  1. the disk's device, the link /sys/block/<disk>/device, names a SCSI
//     device directory host:channel:target:LUN, with channel 0 and LUN 0;
//  2. its host adapter's driver, /sys/class/scsi_host/host<host>/proc_name,
//     is vmw_pvscsi or mptsas, and the unit is, on vmw_pvscsi, the
//     target number, which that driver takes straight from the
//     controller (the unit number on ESXi, the scsi-id under QEMU:
//     scsi-id 3, 5, 6, 9, 15 show as 0:0:3:0, 0:0:5:0, 0:0:6:0, 0:0:9:0,
//     0:0:15:0); on mptsas, the phy identifier of the disk's SAS end
//     device (/sys/class/sas_device/end_device-<host>:…, the one whose
//     scsi_target_id is the target number), because there the target
//     number is no unit: the SAS transport class numbers end devices in
//     the order it finds them (scsi-id 3, 5, 6 show as 0:0:0:0, 0:0:1:0,
//     0:0:2:0), while QEMU's SAS1068 puts scsi-id N on phy N (esx gives
//     the appliance no LSI Logic SAS controller: this is seen under QEMU
//     only);
//  3. the disk is on the payload disk's host adapter, and the payload
//     disk is at unit 0 (esx's layout): units elsewhere are not the ones
//     the payload names.
//
// Every other disk reports no unit: NVMe and virtio disks (their device
// is no SCSI device), ATA disks behind AHCI (SCSI devices sdX too, but on
// hosts whose driver is ahci, one per port, target 0), disks of other
// drivers or on another adapter than the payload's, and all of them when
// the payload disk is not at unit 0 of a pvscsi or mptsas adapter. Apply
// then matches the targets by capacity and guard, as ever. The disks'
// names do not follow their units: under QEMU's pvscsi, with scsi-id 9,
// 3 and 15, sda was at 0:0:9:0, sdb at 0:0:15:0 and sdc at 0:0:3:0. The
// console tells each disk's address and
// unit ("sdb (64 MiB, 0:0:1:0 on vmw_pvscsi, unit 1)"), or why there are
// no units.
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
// (64 and 96 MiB), at SCSI units 1 and 2, and boots the appliance in
// qemu-system-x86_64 under TCG with the payload and the two disks on
// each controller StandbyKit gives standby VMs in turn: VMware
// paravirtual SCSI (pvscsi), LSI Logic SAS (mptsas1068), AHCI and NVMe —
// on the SCSI ones at esx's units (scsi-id 0 for the payload, 1 and 2
// for the targets; appliancevm.AttachAt). After each power-off it checks
// the report with appliance.ReadReport (and the units it tells), the
// console (every module loaded, the payload disk found, the units or
// their absence, a power-off rather than a panic), that both images are
// now base ⊕ changes byte for byte and the payload image untouched; one
// more boot with a payload made for other content must report a guard
// mismatch and leave both images as they were; one boots the ISO image
// (image.BuildISO) from the CD-ROM drive with ESXi's command line, the
// report on the one serial port, as on ESXi; and two boot with two empty
// target disks of 48 MiB written over the same ranges, which only their
// units tell apart: on pvscsi at units 1 and 2, and on LSI Logic SAS at
// units 5 and 2 (so that Linux's SCSI target numbers, 2 and 1, are not
// the units). The boots run in parallel, about 10 s each under TCG; the
// whole test takes about 40 s on two cores. It is skipped without qemu-system-x86_64 (Debian package
// qemu-system-x86) or a kernel package (the ISO boot without xorriso or
// isolinux), and fails instead in CI (STANDBYKIT_REQUIRE_ORACLES=1);
// -short skips it.
package main
