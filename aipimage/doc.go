// Package aipimage reads and writes image sets: the disk-image backups of
// one machine, as one full image and a chain of incremental images.
//
// # Model
//
// An image set is a folder of image files (*.skimg). Every file is one
// backup point and says on its own which set it belongs to, which point it
// is (a random id, a sequence number, a time), which point is its parent,
// and which machine it was taken from (host name, an OS hint, BIOS or UEFI
// firmware, and its disks with their sizes and sector sizes). The full
// image has sequence 0 and no parent; incremental k names point k-1.
//
// A backup schedule that takes a new full image now and then (an "active
// full") writes it into the same set with WriteFullAfter: it starts a new
// chain, with the sequence after the newest point. Points lists every
// chain, oldest first, and ImageSet.Chains tells them apart; a point reads
// through its own chain only.
//
// A disk that was grown or shrunk between two points is never cut or
// padded silently: WriteIncremental refuses a size other than the
// parent's with a *ResizeError unless WriterOptions.Resized says the disk
// was resized, and the new file then records the resize (PointInfo.Resized).
//
// A file stores the disks in fixed-size blocks (64 KiB unless chosen
// otherwise), each LZ4-compressed or stored raw when that does not help,
// each with a CRC-32C, optionally encrypted with AES-256-GCM under a key
// stretched from a passphrase with scrypt. An index gives random access to
// any block without scanning; a trailer written last proves the file
// complete. FORMAT.md in this directory specifies every byte.
//
// The content of disk d at point k is, block by block, the newest version
// among the files 0..k; a block none of them holds is zero. A full image
// omits zero blocks; an incremental records the blocks that changed,
// including those that became zero.
//
// # Reading
//
// OpenDir or OpenFiles opens a set and validates its chain: a missing
// parent, two points on one parent, a file of another set, a gap in the
// sequence numbers each fail with a *ChainError naming the file. Files that
// are still being copied (a replica arriving at a remote site) are not
// errors: they are listed by Pending, with the points after them, and the
// usable chain ends before them. A damaged file fails with ErrCorrupt; it
// is never read as valid.
//
// Point(k) returns a Point whose Disk(d) is an io.SectionReader over the
// disk's full content at k, safe for concurrent use, and whose Changed(d)
// lists the byte ranges point k changed. Reads decode in parallel on large
// requests and keep memory bounded whatever the disk size. IndexOf finds
// the point read from a given file; ExtractSparse copies a point's disk to
// a raw file, with holes where the disk is zero.
//
// # Other formats
//
// The rest of StandbyKit consumes the Set and Point interfaces, not this
// encoding. A product with its own image format implements those two
// interfaces and plugs in unchanged.
//
// # Writing
//
// WriteFull and WriteIncremental write a point from io.ReaderAt disks, the
// latter from a list of changed ranges or by comparing with the previous
// content. WriteIncrementalAfter adds the next point to an open set: it
// compares with the parent point's content as the set reads it, names the
// file with FileName, and refuses a parent that is not a usable point of
// the set or whose successor is already there. For block-level control (a
// backup agent streaming changed blocks), NewFullWriter,
// NewIncrementalWriter and NewResizedWriter return a Writer that
// takes blocks in ascending order. Nothing appears at the target path until
// the file is complete and synced.
package aipimage
