package appliance

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math"
)

// Payload format, version 2 (FORMAT.md is the specification; the
// constants and encoders here are its only implementation).
const (
	formatVersion = 2

	sectorSize = 512

	// maxTargets bounds the target table (and so the header: 5 sectors).
	maxTargets = 64
	// maxRecordLen is the largest record a payload may hold. The writer
	// splits longer extents; the writer and Apply each hold at most one
	// record in memory.
	maxRecordLen = 4 << 20
	// maxCapacity bounds a target's capacity (64 PiB), so that every sum
	// of offsets, lengths and sizes stays far from overflowing an int64.
	maxCapacity = 1 << 56
	// maxUnit is the highest SCSI unit number a target may name: a
	// pvscsi controller's 16 targets, unit 7 being the controller's own
	// (controllerUnit). Unit 0 in a target entry means "unknown".
	maxUnit        = 15
	controllerUnit = 7

	headerFixedLen = 64
	targetEntryLen = 32
	recordHdrLen   = sectorSize
	trailerLen     = sectorSize

	// crcOff is where a record header or trailer sector keeps the CRC-32C
	// of its bytes before it.
	crcOff = sectorSize - 4
	// recordUsed and trailerUsed are how many leading bytes of those
	// sectors carry fields; the rest up to crcOff must be zero.
	recordUsed  = 48
	trailerUsed = 52
)

var (
	headerMagic  = [8]byte{'S', 'B', 'K', 'P', 'A', 'Y', 'L', 'D'}
	recordMagic  = [4]byte{'S', 'B', 'K', 'R'}
	trailerMagic = [8]byte{'S', 'B', 'K', 'P', 'T', 'A', 'I', 'L'}

	le         = binary.LittleEndian
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func crcUpdate(c uint32, b []byte) uint32 { return crc32.Update(c, castagnoli, b) }

// headerSectors is the number of sectors the header of a payload with n
// targets takes: fixed part, target table, CRC, padded to a sector.
func headerSectors(n int) int {
	return (headerFixedLen + n*targetEntryLen + 4 + sectorSize - 1) / sectorSize
}

// payloadLen is the size of a payload: header, one header sector per
// record, the data, the trailer. Callers keep the inputs within the
// format's limits, where this cannot overflow.
func payloadLen(targets int, records, dataBytes int64) int64 {
	return int64(headerSectors(targets))*sectorSize + records*recordHdrLen + dataBytes + trailerLen
}

// targetInfo is one entry of the header's target table.
type targetInfo struct {
	capacity   int64
	guardBytes int64 // bytes the guard covers, which are the bytes written
	records    int64
	guardCRC   uint32
	unit       int // SCSI unit on the appliance's controller; 0: unknown
}

// header is a decoded payload header.
type header struct {
	id      [16]byte
	targets []targetInfo
	records int64
	length  int64
	crc     uint32 // the header CRC, repeated in the trailer
}

func (h *header) idString() string { return hex.EncodeToString(h.id[:]) }

func (h *header) sectors() int { return headerSectors(len(h.targets)) }

// dataBytes is the sum of every target's guard bytes: the payload's data.
func (h *header) dataBytes() int64 {
	var n int64
	for _, t := range h.targets {
		n += t.guardBytes
	}
	return n
}

// encode returns the header's sectors, with h.crc set.
func (h *header) encode() []byte {
	b := make([]byte, h.sectors()*sectorSize)
	copy(b, headerMagic[:])
	le.PutUint16(b[8:], formatVersion)
	le.PutUint16(b[12:], uint16(len(h.targets)))
	le.PutUint16(b[14:], uint16(h.sectors()))
	copy(b[16:], h.id[:])
	le.PutUint64(b[32:], uint64(h.records))
	le.PutUint64(b[40:], uint64(h.length))
	for i, t := range h.targets {
		e := b[headerFixedLen+i*targetEntryLen:]
		le.PutUint64(e[0:], uint64(t.capacity))
		le.PutUint64(e[8:], uint64(t.guardBytes))
		le.PutUint64(e[16:], uint64(t.records))
		le.PutUint32(e[24:], t.guardCRC)
		le.PutUint16(e[28:], uint16(t.unit))
	}
	h.crc = crc(b[:len(b)-4])
	le.PutUint32(b[len(b)-4:], h.crc)
	return b
}

// corruptf returns an ErrCorrupt naming what is wrong.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// checkHeaderStart checks the first sector's fixed fields and returns the
// number of header sectors.
func checkHeaderStart(b []byte) (int, error) {
	if !bytes.Equal(b[:8], headerMagic[:]) {
		return 0, corruptf("not a payload (bad magic)")
	}
	if v := le.Uint16(b[8:]); v != formatVersion {
		return 0, corruptf("unsupported payload version %d", v)
	}
	if f := le.Uint16(b[10:]); f != 0 {
		return 0, corruptf("unknown header flags %#x", f)
	}
	n := int(le.Uint16(b[12:]))
	if n < 1 || n > maxTargets {
		return 0, corruptf("target count %d outside 1..%d", n, maxTargets)
	}
	if s := int(le.Uint16(b[14:])); s != headerSectors(n) {
		return 0, corruptf("header sector count %d, want %d for %d targets", s, headerSectors(n), n)
	}
	return headerSectors(n), nil
}

// decodeHeader decodes and checks all the header's sectors (as many as
// checkHeaderStart said).
func decodeHeader(b []byte) (*header, error) {
	if _, err := checkHeaderStart(b); err != nil {
		return nil, err
	}
	n := int(le.Uint16(b[12:]))
	end := len(b) - 4
	if got, want := crc(b[:end]), le.Uint32(b[end:]); got != want {
		return nil, corruptf("header CRC %#08x, stored %#08x", got, want)
	}
	tableEnd := headerFixedLen + n*targetEntryLen
	if !allZero(b[48:headerFixedLen]) || !allZero(b[tableEnd:end]) {
		return nil, corruptf("nonzero reserved bytes in header")
	}
	h := &header{targets: make([]targetInfo, n), crc: le.Uint32(b[end:])}
	copy(h.id[:], b[16:32])
	records, length := le.Uint64(b[32:]), le.Uint64(b[40:])
	// Sums in uint64: 64 targets at the limits total 2^63 + 3 KiB, one
	// past int64.
	var sumRecords, sumBytes uint64
	var unitOwner [maxUnit + 1]int // unit → 1 + the target at it
	for i := range h.targets {
		e := b[headerFixedLen+i*targetEntryLen:]
		capacity, guard, recs := le.Uint64(e[0:]), le.Uint64(e[8:]), le.Uint64(e[16:])
		unit := int(le.Uint16(e[28:]))
		switch {
		case !allZero(e[30:32]):
			return nil, corruptf("target %d: nonzero reserved bytes", i)
		case unit > maxUnit || unit == controllerUnit:
			return nil, corruptf("target %d: SCSI unit %d not in 0..%d (%d excluded: the controller's)", i, unit, maxUnit, controllerUnit)
		case unit != 0 && unitOwner[unit] != 0:
			return nil, corruptf("target %d: SCSI unit %d is target %d's too", i, unit, unitOwner[unit]-1)
		case capacity == 0 || capacity%sectorSize != 0 || capacity > maxCapacity:
			return nil, corruptf("target %d: capacity %d not a multiple of %d in (0, 2^56]", i, capacity, sectorSize)
		case guard == 0 || guard%sectorSize != 0 || guard > capacity:
			return nil, corruptf("target %d: guard bytes %d not a multiple of %d in (0, capacity]", i, guard, sectorSize)
		case recs == 0 || recs > guard/sectorSize || recs < (guard+maxRecordLen-1)/maxRecordLen:
			return nil, corruptf("target %d: %d records cannot hold %d bytes", i, recs, guard)
		}
		if unit != 0 {
			unitOwner[unit] = i + 1
		}
		h.targets[i] = targetInfo{capacity: int64(capacity), guardBytes: int64(guard), records: int64(recs), guardCRC: le.Uint32(e[24:]), unit: unit}
		sumRecords += recs
		sumBytes += guard
	}
	if records != sumRecords {
		return nil, corruptf("record count %d, targets hold %d", records, sumRecords)
	}
	want := uint64(headerSectors(n))*sectorSize + sumRecords*recordHdrLen + sumBytes + trailerLen
	if length != want {
		return nil, corruptf("payload length %d, layout needs %d", length, want)
	}
	if want > math.MaxInt64 {
		return nil, corruptf("payload length %d beyond 2^63", want)
	}
	h.records, h.length = int64(records), int64(want)
	return h, nil
}

// record is one record header.
type record struct {
	seq    int64
	target int
	off    int64
	length int64
	crc    uint32 // of the data
	pos    int64  // of the data in the payload
}

func (r record) end() int64 { return r.off + r.length }

// encodeRecord fills b (one sector) with the record header of r.
func encodeRecord(b []byte, r record, id [16]byte) {
	clear(b[:recordHdrLen])
	copy(b, recordMagic[:])
	le.PutUint16(b[4:], uint16(r.target))
	le.PutUint32(b[8:], uint32(r.length))
	le.PutUint32(b[12:], r.crc)
	le.PutUint64(b[16:], uint64(r.off))
	le.PutUint64(b[24:], uint64(r.seq))
	copy(b[32:], id[:])
	le.PutUint32(b[crcOff:], crc(b[:crcOff]))
}

// decodeRecord decodes and checks one record header sector on its own:
// magic, CRC, reserved bytes, sequence number, payload ID, alignment and
// length. Placement (target order, capacity, overlap) is the walker's.
func decodeRecord(b []byte, seq int64, id [16]byte) (record, error) {
	if !bytes.Equal(b[:4], recordMagic[:]) {
		return record{}, corruptf("record %d: bad magic", seq)
	}
	if got, want := crc(b[:crcOff]), le.Uint32(b[crcOff:]); got != want {
		return record{}, corruptf("record %d: header CRC %#08x, stored %#08x", seq, got, want)
	}
	if le.Uint16(b[6:]) != 0 || !allZero(b[recordUsed:crcOff]) {
		return record{}, corruptf("record %d: nonzero flags or reserved bytes", seq)
	}
	if s := le.Uint64(b[24:]); s != uint64(seq) {
		return record{}, corruptf("record %d: sequence number %d", seq, s)
	}
	if !bytes.Equal(b[32:48], id[:]) {
		return record{}, corruptf("record %d: belongs to another payload", seq)
	}
	r := record{
		seq:    seq,
		target: int(le.Uint16(b[4:])),
		length: int64(le.Uint32(b[8:])),
		crc:    le.Uint32(b[12:]),
	}
	off := le.Uint64(b[16:])
	if r.length == 0 || r.length%sectorSize != 0 || r.length > maxRecordLen {
		return record{}, corruptf("record %d: length %d not a multiple of %d in (0, %d]", seq, r.length, sectorSize, maxRecordLen)
	}
	if off%sectorSize != 0 || off > maxCapacity {
		return record{}, corruptf("record %d: offset %d unaligned or too large", seq, off)
	}
	r.off = int64(off)
	return r, nil
}

// trailer is the decoded last sector of a payload.
type trailer struct {
	recordsCRC uint32
}

func encodeTrailer(h *header, recordsCRC uint32) []byte {
	b := make([]byte, trailerLen)
	copy(b, trailerMagic[:])
	le.PutUint16(b[8:], formatVersion)
	le.PutUint32(b[12:], h.crc)
	copy(b[16:], h.id[:])
	le.PutUint64(b[32:], uint64(h.records))
	le.PutUint64(b[40:], uint64(h.length))
	le.PutUint32(b[48:], recordsCRC)
	le.PutUint32(b[crcOff:], crc(b[:crcOff]))
	return b
}

// decodeTrailer checks the trailer against the header it must repeat.
func decodeTrailer(b []byte, h *header) (trailer, error) {
	switch {
	case !bytes.Equal(b[:8], trailerMagic[:]):
		return trailer{}, corruptf("trailer: bad magic")
	case crc(b[:crcOff]) != le.Uint32(b[crcOff:]):
		return trailer{}, corruptf("trailer: CRC mismatch")
	case le.Uint16(b[8:]) != formatVersion || le.Uint16(b[10:]) != 0 || !allZero(b[trailerUsed:crcOff]):
		return trailer{}, corruptf("trailer: bad version or nonzero reserved bytes")
	case le.Uint32(b[12:]) != h.crc || !bytes.Equal(b[16:32], h.id[:]):
		return trailer{}, corruptf("trailer belongs to another header")
	case le.Uint64(b[32:]) != uint64(h.records) || le.Uint64(b[40:]) != uint64(h.length):
		return trailer{}, corruptf("trailer: record count or length differs from the header's")
	}
	return trailer{recordsCRC: le.Uint32(b[48:])}, nil
}
