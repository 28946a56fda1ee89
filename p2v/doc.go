// Package p2v inspects a physical machine's disks offline and plans what
// the machine needs to boot as a VM: firmware, guest OS identifier, the
// disk controller whose driver the guest already has, and the byte patches
// that enable it.
//
// A Plan never writes anything: its patches are same-size, in-place edits
// (a registry value, a text file rewritten inside its own blocks, a
// checksum) that travel in the same delta disk as the backup's changed
// blocks. Overlay presents a disk with a plan's patches applied, as an
// io.ReaderAt.
//
// Inspector.InspectDisks reads the partition tables (firmware: an EFI
// system partition on GPT means "efi", any other table "bios"; a boot
// disk without a table leaves it to the image set's record of the
// machine, read by Inspector.Inspect, and to "bios" without one), then looks for Windows on NTFS
// volumes (sub-packages ntfs and regf): the SOFTWARE hive gives the
// version and so the ESXi guest id; the SYSTEM hive tells which VM
// controller the guest has a driver for (VMware's pvscsi, then LSI SAS,
// AHCI, NVMe), and that driver is made boot-start in every control set
// used at boot. A hive not cleanly written (the usual state on a running
// Windows 8.1 or later) is read as Windows would load it, its
// transaction logs (.LOG1/.LOG2 beside it) replayed in memory; fixes to
// it are written together with the replayed pages and a clean base
// block, so Windows has nothing left to replay over them. Damaged logs,
// logs of another hive, or a replay that would grow the file give a
// warning and no fix.
//
// Without Windows it looks for a Linux root file system on ext2/3/4
// partitions and LVM2 logical volumes (sub-packages ext4 and lvm):
// os-release gives the guest id; fstab and grub entries that name disks by
// device (/dev/sda2, /dev/cciss/…) are rewritten to UUID=; udev persistent
// network rules and ifcfg HWADDR lines are commented out; the newest
// kernel's initramfs (sub-package initramfs) decides the controller.
// Files are rewritten only inside their own blocks; what cannot be done
// offline is a warning in the plan, never a silent omission.
//
// Inspection reads only metadata and the few files it needs (small
// configuration files whole, up to 16 MiB; the initramfs streamed in place
// from its extents, its files' data discarded as it goes), and is
// deterministic: the plan of the same bytes is the same, which the boot
// point pipeline relies on to undo a previous point's patches.
package p2v
