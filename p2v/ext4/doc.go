// Package ext4 reads ext2, ext3 and ext4 filesystems offline and plans
// same-size, in-place rewrites of text files in them, so that P2V fixups
// (an /etc/fstab, a network configuration) can travel as byte patches.
// Nothing is mounted and nothing is written: the filesystem is an
// io.ReaderAt (the partition itself, not the whole disk) and every
// change is returned as a Patch for the caller to apply, typically as a
// p2v.Patch after adding the partition's offset on the disk.
//
// Open reads the superblock and checks its features. Group descriptors
// (32- and 64-bit, meta_bg) are read when an inode of their group is
// first needed and cached, as are inode table blocks. Files are mapped by
// extent trees of any depth (unwritten extents read as zeros) or by the
// classic ext2/3 block map (direct, single, double and triple indirect
// blocks); small files and directories stored inline in the inode
// (inline_data) are read too. Directories are read linearly, which is
// correct for hashed (htree) directories as well: their index blocks
// look like empty directory blocks.
//
// With metadata_csum every superblock, group descriptor, inode, extent
// tree block and directory block read is verified (crc32c, seeded from
// the superblock's UUID or s_checksum_seed) and a mismatch is
// ErrChecksum; with uninit_bg the crc16 group descriptor checksums are
// verified. Any structure that does not add up is ErrCorrupt, never a
// panic, and every walk is bounded by the size of the filesystem, so a
// damaged or hostile image costs at most a few reads per block.
//
// Paths are absolute and resolve within this filesystem: symbolic links
// are followed in intermediate components (and in the final one with
// LookupFollow, ReadFile, FileRanges and RewriteFile), at most 40 of
// them, and an absolute link target starts at this filesystem's root.
//
// RewriteFile replaces a regular file's content within the blocks it
// already owns: the new content must fit in the file's initialized
// blocks (ErrNoRoom otherwise) and reach its last initialized block,
// since e2fsck rejects initialized blocks past the end of a file. The
// patches cover the file's data blocks (the tail of the last one zeroed)
// and its inode (i_size and, with metadata_csum, the inode checksum),
// nothing else: no bitmap, group descriptor or time changes, so the
// filesystem stays clean for e2fsck. Filesystems whose journal needs
// recovery are refused, because replaying the journal could restore an
// older copy of the inode.
package ext4
