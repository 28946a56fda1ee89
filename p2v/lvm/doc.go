// Package lvm reads LVM2 physical volumes offline and maps logical
// volumes to byte ranges on them, so that the root filesystem of a
// RHEL-family machine can be read, and patched, without the kernel's
// device-mapper or anything mounted. A physical volume (PV) is an
// io.ReaderAt, typically a partition of the disk.
//
// ReadPV finds the label ("LABELONE", type "LVM2 001") in one of the
// first four sectors and the PV header that follows it: the PV UUID, the
// device size and the lists of data and metadata areas (and the version
// 2 extension with its bootloader areas). Each metadata area starts with
// a header (magic " LVM2 x[5A%r0N*>", version 1) whose first raw
// location points at the current metadata text, relative to the area.
// The area past its 512-byte header is a circular buffer, so the text
// may run past the end of the area and continue right after the header.
// The label, the area header and the text each carry LVM's checksum: the
// reflected CRC-32 (polynomial 0xedb88320) seeded with 0xf597a6cf and
// without the final inversion. A mismatch, or any field that does not add
// up, is ErrCorrupt; a device without a label is ErrNotLVM. With several
// metadata areas the valid text with the highest seqno is used. A PV
// that carries no metadata (an orphan, or one created with
// --metadatacopies 0) reads with a nil VG: the VG is then described by
// the metadata of another of its PVs.
//
// The metadata text is in LVM's configuration language (name = value,
// name { ... }, strings, numbers, lists, # comments), the same as
// vgcfgbackup writes, and ParseMetadata turns it into a VG: its extent
// size, its PVs (metadata name "pv0", UUID, pe_start) and its logical
// volumes (LVs) with their segments. Sizes are converted to bytes.
//
// An LV is a sequence of segments, each a run of logical extents. A
// "striped" segment with one stripe is linear: its extents lie in order
// on one PV from a given physical extent, extent n of a PV being at byte
// pe_start + n*extent_size. With N stripes, the segment's bytes are dealt
// out in stripe_size chunks to the N areas in turn, as dm-stripe does.
// ToPV maps an LV byte offset to a PV and an offset on it, with how many
// bytes continue contiguously there: this is how a filesystem patch on
// the LV becomes a patch on the PV (and, adding the partition's offset,
// on the disk). Map lists all of an LV's runs, and Open returns an
// io.ReaderAt over the LV given readers for its PVs, keyed by PV UUID (as
// found in each PV's label) or metadata name. Other segment types (thin
// pools and thin volumes, RAID, mirrors, snapshots, cache, VDO) are
// ErrUnsupported, with the type named.
//
// Nothing is ever written. Every length and offset read from the disk is
// bounded before use, so damaged or hostile input yields an error, never
// a panic or an outsized allocation.
package lvm
