// Package initramfs lists what is inside a Linux initramfs image, read
// offline from the guest's /boot, without unpacking anything to disk.
//
// Why: a machine converted to a VM boots only if the VM's disk controller
// has its driver in the initramfs or built into the kernel. For VMware
// that is vmw_pvscsi (paravirtual SCSI), mptsas or mptspi (the LSI Logic
// SAS and parallel controllers), ahci (SATA) or nvme. StandbyKit reads
// the image with Read and asks Archive.Has for each candidate before it
// chooses the controller; Archive.Modules and Archive.Builtin give the
// details, and ReadFile fetches a small file such as etc/modprobe.d/*.conf.
//
// The model follows the kernel's unpack_to_rootfs: an image is a sequence
// of segments separated by zero padding. A segment starting with "0707"
// at a 4-aligned offset is an uncompressed cpio archive (typically the
// early-microcode archive that dracut and mkinitramfs put first); any
// other segment is one compressed member, detected by its magic: gzip, xz,
// zstd, lz4 (legacy frames, what lz4 -l and the kernel use), bzip2 or
// lzma. A member decompresses to one or more complete cpio archives with
// zero padding between them. Archives are in the newc ("070701") or crc
// ("070702", data checksums verified) format; each ends with a TRAILER!!!
// record, and headers+names and data are padded to 4 bytes. Members that
// follow each other (several gzip members, zstd frames, early cpio plus
// compressed main archive) are all read; lzo, the lz4 frame format and
// the old binary and odc cpio formats give ErrUnsupported.
//
// Kernel modules are the files named *.ko, *.ko.xz, *.ko.zst or *.ko.gz
// under lib/modules/<version>/ or usr/lib/modules/<version>/, reported by
// base name with '-' turned into '_' as modprobe does. Built-in drivers
// come from lib/modules/<version>/modules.builtin and, if present,
// modules.builtin.modinfo, the only file contents Read keeps besides
// symlink targets.
//
// Reading streams: file data is skipped, never held, so memory stays small
// whatever the image size (decompressor history is capped at 128 MiB).
// limit bounds the total decompressed bytes (ErrTooLarge beyond it);
// uncompressed segments are bounded by the input itself. Damaged images
// give ErrCorrupt, errors of the caller's io.Reader are returned wrapped
// as they are, and no input makes the package panic.
package initramfs
