// Package appliance is the writer appliance's data path: the payload that
// carries one boot point's changes to ESXi, and Apply, which writes it into
// the standby's disks from inside a small VM that has them attached, so
// that the bytes go through ESXi's own disk stack into whatever delta
// format the datastore uses (VMFS6's SEsparse, vSAN objects, disks of
// 2 TiB and more).
//
// # Payload
//
// A payload is a plain byte stream (imported into ESXi as a disk through
// NFC, streamOptimized, so it costs space and transfer in proportion to
// the changed bytes, never to the disk size). It is made of 512-byte
// sectors so that every record's data starts on a sector boundary:
//
//   - a header: magic, version, a random payload ID, and for each target
//     disk its capacity, the SCSI unit the host attaches it at (0 if
//     unknown) and a guard — the CRC-32C of the target's current content
//     over every range the payload writes, with how many bytes it covers
//     — so that a payload is never written onto the wrong disk, nor onto a
//     disk in an unexpected state;
//   - records: target index, offset, length (multiples of 512) and the
//     CRC-32C of the data, followed by the data;
//   - a trailer: the record count and a CRC over every record header.
//
// FORMAT.md in this folder is the byte-level specification.
//
// # Apply
//
// Apply reads a payload, matches each target to exactly one of the disks
// it is given (the disk at the target's SCSI unit when the disks know
// their units, see Addressed, else any disk; of the target's capacity
// and with its guard in either case — the unit picks, the guard checks),
// refuses to write anything when a target has no match, several, or the
// payload is damaged, then writes
// every record, syncs, reads every record back and compares it, and
// reports each step as one JSON object per line (the appliance sends them
// to a serial port backed by a datastore file, which package esx reads
// once the appliance has powered itself off).
package appliance
