// Package vmdk writes the VMware disk files a standby VM on ESXi is made
// of, and reads disk chains back.
//
// The base disk of a standby VM is written once, as a streamOptimized VMDK
// (WriteStreamOptimized): a single-pass stream of zlib-compressed 64 KiB
// grains in ascending order, all-zero grains left out, with the grain
// tables after the grains they index and the grain directory and footer at
// the end, the layout VMware's importers consume. Grains are compressed by
// parallel workers and written in order, so memory stays at a few grains
// per worker whatever the disk size. ESXi cannot run this format directly:
// it is imported through NFC, which stores a thin vmfs disk.
//
// Every later boot point is a vmfsSparse delta (NewDelta, then
// Delta.WriteExtent): a COWD extent of 512-byte grains that holds only the
// changed sectors, with a grain table for each touched 2 MiB region, and a
// descriptor whose parentCID and parentFileNameHint put it on top of the
// previous link. Its layout is planned before a byte is written, so its
// size is known in advance and it streams straight into an upload. COWD
// addresses sectors with 32 bits: disks of 2 TiB or more are refused with
// ErrTooLarge. An empty delta (no ranges) is a scratch leaf that lets a
// boot point be powered on without touching the chain.
//
// A COWD extent can also be written in place, as ESXi writes the leaf of
// a running VM: OpenCOWD (or CreateCOWD, for a new empty extent) returns a
// COWDFile whose WriteAt overwrites the sectors that have a grain and
// appends grains for the others, with a grain table for each newly touched
// 2 MiB region. It keeps freeSector and the file's 64 KiB padding right
// and orders its writes (data, grain table, grain directory, header) so
// that a crash never leaves an entry pointing at unwritten data; OpenCOWD
// checks every table it reads and recovers a freeSector a crash left
// behind.
//
// vmfsSparse cannot describe a disk of 2 TiB or more; a child of such a
// disk is a hosted sparse extent (the KDMV extent of monolithicSparse
// files: 64 KiB grains, 512-entry grain tables, a redundant grain
// directory) named by a twoGbMaxExtentSparse text descriptor
// (NewSparseChild). CreateSparse makes it empty, allocating grain tables
// on demand so that an empty child of a 3 TiB disk is under 1 MiB, and
// OpenSparse opens it (or a monolithicSparse file qemu-img or VMware
// made) as a SparseFile, written in place with the same write ordering
// and checks as a COWDFile. A grain is 64 KiB, so a write into part of a
// new grain fills the rest with the parent's content, which SetBacking
// provides. Grain entries are 32-bit sector numbers: one such extent holds
// at most 2 TiB of grains (ErrTooLarge past that), whatever its capacity.
//
// OpenChain reads a chain from any fs.FS: text descriptors with FLAT,
// VMFS, SPARSE (hosted sparse and streamOptimized), VMFSSPARSE and ZERO
// extents, and monolithic sparse files with an embedded descriptor, as
// qemu-img and VMware Workstation write them. It checks every link's
// parentCID against its parent's CID (ErrCIDMismatch otherwise, as VMware
// refuses such a chain) and presents the leaf's content as an io.ReaderAt.
// Chain.Allocated lists the byte ranges one link holds (the grains of a
// sparse, streamOptimized or COWD extent, all of a flat one), walking the
// grain directories rather than the capacity: merging a child into its
// parent, or turning a streamOptimized disk into a flat one, touches only
// the data.
//
// Descriptors are parsed leniently (VMware's keys are case-insensitive)
// and written in the one spelling both VMware and qemu accept. File names
// follow ESXi's conventions: DiskName, FlatName, NextDeltaName.
package vmdk
