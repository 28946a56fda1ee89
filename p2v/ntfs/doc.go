// Package ntfs reads an NTFS volume offline, given as an io.ReaderAt, to find
// files and the physical byte ranges that hold their data.
//
// It is written for StandbyKit's P2V fixups, which are computed as same-size
// byte patches over a backed-up disk: nothing is mounted and nothing is ever
// written. Open parses the boot sector and the $MFT's own record; every
// other MFT record is read on demand through the $MFT's data runs (the MFT
// may be fragmented and its record 0 may carry an $ATTRIBUTE_LIST).
//
// Model. A Volume is a boot sector (sector and cluster sizes, MFT location,
// MFT and index record sizes), the run list of the $MFT and, once a name is
// looked up, the volume's $UpCase table. A File is one MFT base record with
// the attributes of its extension records (followed through the
// $ATTRIBUTE_LIST); its contents are the unnamed $DATA attribute. Records
// and INDX blocks are checked for their signature and their update sequence
// (the last two bytes of every 512-byte stride must hold the record's update
// sequence number; the true bytes are in the update sequence array):
// a mismatch is ErrCorrupt.
//
// Names are looked up through the $I30 B-tree of each directory
// ($INDEX_ROOT, $INDEX_ALLOCATION and its $BITMAP), comparing names the way
// NTFS collates them: case-insensitively through $UpCase. ReadDir lists a
// directory in collation order, without the DOS (8.3) aliases (which
// Lookup still resolves).
//
// Ranges gives the physical location of a file's bytes: offsets within the
// volume, in file order, covering exactly Size bytes. Non-resident data
// lies in whole clusters and can be patched in place freely. Resident data
// (small files) lies inside the file's MFT record, and that record is
// protected by the update sequence: on disk the last two bytes of each
// 512-byte stride of the record (volume offsets 510 and 511 modulo 512) hold
// the update sequence number, not file bytes. Such ranges are marked
// Resident; use File.PatchAt, which returns patches that keep the record
// consistent, rather than writing at a resident range directly.
//
// Compressed and encrypted data are not supported (ErrUnsupported); sparse
// data reads as zeros but has no Ranges. All offsets read from the volume
// are bounds-checked: a damaged volume yields ErrCorrupt, never a panic.
//
// State tells whether Windows left the volume cleanly: the dirty flag of
// $Volume (a check is due) and the restart area of $LogFile (operations
// that Windows replays at mount). The journal is not replayed here, so on
// such a volume the files read as they are on disk.
//
// # Compared with go-ntfs
//
// www.velocidex.com/golang/go-ntfs, the NTFS library of the Velociraptor
// forensic tool, was compared with this package on volumes written by
// Windows 10 (testdata/windows-made) holding registry hives and logs: the
// same files are found, with the same contents and, for non-resident
// data, the same physical ranges. This package is kept, and go-ntfs not
// taken in, because patching needs what go-ntfs does not give:
//
//   - Resident data: go-ntfs reads it from a copy of the MFT record and
//     gives no place on the volume; here its ranges lie inside the record,
//     and PatchAt keeps the record's update sequence consistent.
//   - Clusters of 2 MiB, which Windows 10 formats since 1709: go-ntfs
//     refuses the volume ("Invalid cluster size"); this package reads it.
//   - Dependencies: go-ntfs brings four more modules into the build
//     (Velocidex's ordereddict and its json and yaml forks, go-spew) and
//     some fifteen more into go.sum.
//
// go-ntfs is better at one thing: it decompresses LZNT1-compressed data,
// which this package refuses. Compressed data cannot be patched in place
// anyway (the inspector warns instead), but a compressed SOFTWARE hive
// could be read for the Windows version; that is left undone.
package ntfs
