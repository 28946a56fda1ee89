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
// whose two sequence numbers differ was not cleanly written: at the next
// boot (or load) Windows replays its transaction logs over the primary
// file, which would overwrite our edits with older data, or replay log
// entries onto cells we have just reallocated and corrupt the hive. Open
// therefore refuses such a hive with ErrDirty (the fix is to boot the
// source once more or to replay the logs with a registry tool first).
//
// Our patches do not touch the base block: the edits are made in place in
// existing bins, so the hive bins data size does not change, and the
// sequence numbers are left as they are (equal, so the hive stays clean
// and Windows has nothing to replay). The checksum covers only the first
// 508 bytes of the base block, so it stays valid; if an edit ever did
// change a base block byte, the patch set would also carry the recomputed
// checksum. The .LOG1/.LOG2 files themselves are left alone: a hive whose
// sequence numbers are equal and whose checksum is valid is clean, and
// Windows does not recover it from its logs.
//
// # Chaining edits
//
// Patches are relative to the hive as left by the earlier edits made
// through the same Hive: after its first edit, a Hive works on a private
// copy of the bytes with its patches applied, so several SetDWORD calls
// can be chained; apply all their patches in order. A Hive is not safe for
// concurrent use.
package regf
