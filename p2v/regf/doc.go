// Package regf reads a Windows registry hive file (SYSTEM, SOFTWARE, ...)
// from bytes and computes in-place edits of it as byte patches, so that
// P2V fixups (for example enabling the pvscsi or LSI_SAS boot driver) can
// be made offline without mounting anything. Another package reads the
// hive file out of the NTFS volume and maps the patch offsets, which are
// relative to the start of the hive file, to disk offsets.
//
// # The format
//
// A hive file is a 4096-byte base block ("regf": sequence numbers, the
// root cell offset, the size of the hive bins data, a checksum that is the
// XOR of the first 508 bytes as little-endian uint32s, with 0 stored as 1
// and 0xffffffff as 0xfffffffe), followed by hive bins ("hbin", multiples
// of 4096 bytes). A bin holds cells: an int32 size (negative while the
// cell is allocated, positive when free, a multiple of 8, header
// included) followed by a record. Cell offsets are relative to the first
// bin. Keys are nk records (name, subkey count and list, value count and
// list, class, security sk cell); subkey lists are lf/lh (offset + hash
// hint), li (offsets) or ri (a list of such lists); values are vk records
// whose data (up to 4 bytes) sits in the data offset field itself when
// bit 31 of the data size is set, else in a data cell, or for more than
// 16344 bytes in a db record that lists 16344-byte segment cells. Open
// walks every bin and cell, and every offset followed afterwards must
// point at the start of an allocated cell inside the bins: malformed
// input gives ErrCorrupt (or ErrNotHive, ErrUnsupported), never a panic.
//
// # Edits
//
// SetDWORD overwrites an existing REG_DWORD in place (4 bytes). A missing
// value is created inside free cells of the existing bins (best fit,
// splitting a larger free cell): a vk cell, and a value list entry either
// in the spare room of the current value list cell or in a new list cell,
// in which case the old list cell is marked free (its size made
// positive), as Windows and hivex do. The nk's value count, value list
// offset and maximum name/data lengths are updated. The file never grows:
// growing it would mean adding a bin and changing the base block and the
// file size on the NTFS volume, so when the free cells are too small the
// edit fails with ErrNoRoom and the caller reports that the fixup cannot
// be done offline.
//
// CreateKey adds missing keys the same way: an nk cell sharing its
// parent's security (sk) cell, whose reference count goes up, and an
// entry inserted in sorted position (upcased name, as Windows binary
// searches it) into the parent's lf/lh/li leaf, or into the right leaf of
// an ri, with the lh hash Windows checks. Only printable ASCII names are
// created, since Windows' upcase table governs order and hash. Last
// written timestamps are left as they are.
//
// # The base block, sequence numbers and dirty hives
//
// Windows writes a hive by first logging the dirty pages to .LOG1/.LOG2,
// incrementing the primary sequence number, writing the bins, then
// setting the secondary sequence number equal to the primary. A hive
// whose two sequence numbers differ (or whose base block checksum is
// wrong) is dirty: at the next boot Windows replays its transaction logs
// over the primary file, which would overwrite edits made to the file
// alone. Since Windows 8.1 this is the usual state of a running system's
// hives: the logs take every flush and the primary file is brought up to
// date lazily. Open therefore refuses a dirty hive with ErrDirty.
//
// Recover replays the logs in memory as the kernel does and returns the
// hive Windows would load. Old-format logs (Vista to 8) hold a copy of
// the base block's first sector, "DIRT" and a bitmap with a bit per
// 512-byte page of the bins, then those pages; the newest log whose
// timestamp is not older than the primary's applies. New-format logs
// (8.1 and later) hold "HvLE" entries, each with its sequence number,
// the bins size, a list of (offset, size) pages and the pages, guarded by
// two Marvin32 hashes (of the header and of the rest). The log with the
// earlier entries goes first, if its first entry is not older than the
// primary's secondary sequence number; each next entry applies only if
// its hashes hold and its sequence number follows, then the other log if
// it carries on the sequence. Recover is stricter than Windows where
// Windows would silently load a hive missing logged changes: a damaged
// log base block, entries newer than where replay stops, overlapping or
// mixed-format logs give ErrBadLog, and a log whose base block names
// another hive gives ErrForeignLog. A torn last entry (hash mismatch,
// nothing after it) is dropped, as Windows drops it.
//
// The recovered hive carries a clean base block: both sequence numbers
// past every one in the primary and its logs, the bins size and first
// flag of the last entry, the checksum recomputed. Writing its differing
// pages back into the primary file in place, with that base block, leaves
// Windows nothing to replay over edits made on top of it; the log files
// can stay as they are, as Windows ignores the logs of a clean hive. The
// file never grows: if the logs need more bins than the file holds
// (Recovery.Grown), the hive cannot be written back offline.
//
// Edits themselves do not touch the base block: they are made in place
// in existing bins, so the hive bins data size does not change. The
// checksum covers only the first 508 bytes of the base block; if an edit
// ever did change a base block byte, the patch set would also carry the
// recomputed checksum.
//
// # Chaining edits
//
// Patches are relative to the hive as left by the earlier edits made
// through the same Hive: after its first edit, a Hive works on a private
// copy of the bytes with its patches applied, so several SetDWORD calls
// can be chained; apply all their patches in order. A Hive is not safe for
// concurrent use.
package regf
