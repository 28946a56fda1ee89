// Package xfs reads XFS filesystems offline, as RHEL 7 to 9 put on /boot
// and /: enough to find a machine's os-release, fstab, GRUB configuration,
// initramfs and network scripts. Nothing is mounted and nothing is ever
// written: the filesystem is an io.ReaderAt (the partition itself, not the
// whole disk). Writing or patching files is not supported.
//
// Open reads the primary superblock (big-endian, like all XFS metadata),
// accepts version 4 and version 5 (CRC-enabled) filesystems and refuses
// incompatible features it does not know, and filesystems flagged as
// needing repair, with ErrUnsupported. Inode numbers encode their
// location: the allocation group in the high bits, then the block within
// the group (sb_agblklog bits) and the inode within the block
// (sb_inopblog bits); filesystem block numbers in extents are encoded the
// same way (agno<<agblklog | agbno). Allocation group headers, free space
// and inode btrees are never read: the reader only follows inodes.
//
// A file's data fork is local (in the inode: shortform directories and
// short symbolic links), an extent list of packed 128-bit records, or a
// bmap btree rooted in the inode (BMAP/BMA3 blocks). Unwritten extents and
// holes read as zeros. Directories in block, leaf and node form are read
// by parsing every data block below the leaf offset (32 GiB) and skipping
// free space; leaf, node and free-index blocks are not needed for that.
// Long symbolic links live in remote blocks (with an XSLM header on v5).
//
// On v5 filesystems the superblock, every inode, bmap btree block,
// directory data block and remote symbolic link block read is verified
// (crc32c) and a mismatch is ErrChecksum; owner and UUID fields are
// checked where present. Anything that does not add up is ErrCorrupt,
// never a panic: every offset is checked against the filesystem size and
// every walk is bounded.
//
// Paths are absolute and resolve within this filesystem: symbolic links
// are followed in intermediate components (and in the last one with
// LookupFollow, ReadFile and FileRanges), at most 40 of them, and an
// absolute target starts at this filesystem's root. ReadFile refuses files
// over MaxReadSize; FileRanges maps a file to byte ranges of the
// filesystem instead, for the caller to read or copy.
//
// The log is not replayed: a filesystem that was not unmounted cleanly is
// read as its metadata stands on disk.
package xfs
