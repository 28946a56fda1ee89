package regf

import (
	"errors"
	"fmt"
	"math/bits"
)

// Errors of transaction log recovery. They are wrapped with the log's name
// and the reason; test with errors.Is.
var (
	// ErrBadLog: a transaction log file is damaged or the logs contradict
	// each other, so which hive Windows would load cannot be told.
	ErrBadLog = errors.New("regf: damaged or inconsistent transaction log")
	// ErrForeignLog: a transaction log file belongs to another hive (its
	// copy of the base block names another file or resource manager).
	ErrForeignLog = errors.New("regf: transaction log of another hive")
)

// LogFormat is the format of a transaction log file.
type LogFormat int

const (
	// LogUnused: an empty or never written log file.
	LogUnused LogFormat = iota
	// LogOld: Windows Vista to 8, a dirty vector and 512-byte pages.
	LogOld
	// LogNew: Windows 8.1 and later, a series of hashed log entries.
	LogNew
)

func (f LogFormat) String() string {
	switch f {
	case LogOld:
		return "old format (dirty vector)"
	case LogNew:
		return "new format (log entries)"
	}
	return "unused"
}

const (
	logBaseLen      = 512 // a log keeps only the first sector of the base block
	logEntryHdrLen  = 40
	fileTypeLogOld  = 1
	fileTypeLogNT2K = 2 // Windows 2000's old-format log
	fileTypeLogNew  = 6
	binsAlign       = 4096
	oldPageSize     = 512
)

// LogFile is a transaction log file (SYSTEM.LOG1, SYSTEM.LOG2, ...) as
// read from the volume.
type LogFile struct {
	Name string
	Data []byte
}

// txLog is a parsed transaction log file.
type txLog struct {
	name     string
	format   LogFormat
	base     []byte // the log's copy of the first sector of the base block
	seq      uint32 // its primary (= secondary) sequence number
	stamp    uint64 // its last written timestamp
	binsSize uint32

	// New format: the well-formed entries from the start of the log, in
	// file order, up to the first that is not; torn describes that one if
	// it carried the HvLE signature (a damaged or half-written entry), and
	// beyond lists the well-formed entries found after it.
	entries []logEntry
	torn    *tornEntry
	beyond  []logEntry

	// Old format: the dirty 512-byte pages.
	pages []dirtyPage
}

type logEntry struct {
	off      int // in the log file
	seq      uint32
	flags    uint32
	binsSize uint32
	pages    []dirtyPage
}

type tornEntry struct {
	off    int
	reason string
}

// dirtyPage is data to write at off, relative to the start of the bins.
type dirtyPage struct {
	off  uint32
	data []byte
}

// parseLog reads a transaction log file. An empty file, or one whose first
// sector is all zeros, is unused. A base block that is not a valid log
// base block is ErrBadLog.
func parseLog(name string, b []byte) (*txLog, error) {
	l := &txLog{name: name}
	if len(b) == 0 || (len(b) >= logBaseLen && allZero(b[:logBaseLen])) {
		return l, nil
	}
	if len(b) < logBaseLen {
		return nil, fmt.Errorf("%w: %s: %d bytes, shorter than its base block", ErrBadLog, name, len(b))
	}
	base := b[:logBaseLen]
	if string(base[:4]) != "regf" {
		return nil, fmt.Errorf("%w: %s: no regf signature", ErrBadLog, name)
	}
	if sum := le32(base, checksumOff); sum != Checksum(base) && sum != rawChecksum(base) {
		return nil, fmt.Errorf("%w: %s: base block checksum %#x, computed %#x", ErrBadLog, name, sum, Checksum(base))
	}
	l.base = base
	l.seq = le32(base, 4)
	if s2 := le32(base, 8); s2 != l.seq {
		return nil, fmt.Errorf("%w: %s: sequence numbers %d and %d differ (a log write was interrupted)", ErrBadLog, name, l.seq, s2)
	}
	l.stamp = uint64(le32(base, 12)) | uint64(le32(base, 16))<<32
	l.binsSize = le32(base, 40)
	switch t := le32(base, 28); t {
	case fileTypeLogNew:
		l.format = LogNew
		l.parseEntries(b)
	case fileTypeLogOld, fileTypeLogNT2K:
		l.format = LogOld
		if err := l.parseDirtyVector(b); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: %s: file type %d is not a transaction log", ErrBadLog, name, t)
	}
	return l, nil
}

// parseEntries collects the well-formed log entries from offset 512 on.
// What follows the last one is either remnants of older entries, zeros,
// or a torn entry; which of these matters is decided by replay.
func (l *txLog) parseEntries(b []byte) {
	for off := logBaseLen; off+logEntryHdrLen <= len(b); {
		if string(b[off:off+4]) != "HvLE" {
			return
		}
		e, err := parseEntry(b, off)
		if err != "" {
			l.torn = &tornEntry{off: off, reason: err}
			l.findBeyond(b, off+oldPageSize)
			return
		}
		l.entries = append(l.entries, e)
		off += int(le32(b, off+4))
	}
}

// findBeyond looks for well-formed entries after a torn one, at every
// sector: a torn entry is harmless only when nothing newer follows it.
func (l *txLog) findBeyond(b []byte, from int) {
	for off := from; off+logEntryHdrLen <= len(b); off += oldPageSize {
		if string(b[off:off+4]) != "HvLE" {
			continue
		}
		if e, err := parseEntry(b, off); err == "" {
			l.beyond = append(l.beyond, e)
		}
	}
}

// parseEntry checks the log entry at off (sizes, then both hashes, then
// that its pages fit the entry and the hive bins) and returns it, or
// why it is not valid.
func parseEntry(b []byte, off int) (logEntry, string) {
	h := b[off:]
	size := le32(h, 4)
	if size < logEntryHdrLen || size%oldPageSize != 0 || uint64(size) > uint64(len(h)) {
		return logEntry{}, fmt.Sprintf("size %#x (%#x bytes left in the file)", size, len(h))
	}
	h = h[:size]
	if marvin32(logEntrySeed, h[:32]) != le64(h, 32) {
		return logEntry{}, "header hash mismatch"
	}
	if marvin32(logEntrySeed, h[logEntryHdrLen:]) != le64(h, 24) {
		return logEntry{}, "data hash mismatch"
	}
	e := logEntry{off: off, flags: le32(h, 8), seq: le32(h, 12), binsSize: le32(h, 16)}
	if e.binsSize == 0 || e.binsSize%binsAlign != 0 {
		return logEntry{}, fmt.Sprintf("hive bins data size %#x", e.binsSize)
	}
	n := le32(h, 20)
	if n == 0 || uint64(n) > uint64(size-logEntryHdrLen)/8 {
		return logEntry{}, fmt.Sprintf("%d dirty pages", n)
	}
	data := logEntryHdrLen + 8*int(n)
	for i := range int(n) {
		ref := logEntryHdrLen + 8*i
		po, ps := le32(h, ref), le32(h, ref+4)
		if ps == 0 || po%oldPageSize != 0 || ps%oldPageSize != 0 || uint64(po)+uint64(ps) > uint64(e.binsSize) {
			return logEntry{}, fmt.Sprintf("dirty page %d at bins offset %#x of %#x bytes (bins are %#x bytes)", i, po, ps, e.binsSize)
		}
		if uint64(data)+uint64(ps) > uint64(size) {
			return logEntry{}, fmt.Sprintf("dirty page %d runs past the entry", i)
		}
		e.pages = append(e.pages, dirtyPage{off: po, data: h[data : data+int(ps)]})
		data += int(ps)
	}
	return e, ""
}

// parseDirtyVector reads an old-format log: "DIRT" and a bitmap with a
// bit per 512-byte page of the hive bins at the start of the second
// sector, then the dirty pages in bit order from the next sector.
func (l *txLog) parseDirtyVector(b []byte) error {
	if l.binsSize == 0 || l.binsSize%binsAlign != 0 {
		return fmt.Errorf("%w: %s: hive bins data size %#x", ErrBadLog, l.name, l.binsSize)
	}
	nbits := int(l.binsSize / oldPageSize)
	vec := logBaseLen + 4
	if len(b) < vec+nbits/8 || string(b[logBaseLen:vec]) != "DIRT" {
		return fmt.Errorf("%w: %s: no dirty vector", ErrBadLog, l.name)
	}
	bitmap := b[vec : vec+nbits/8]
	pos := (vec + nbits/8 + oldPageSize - 1) / oldPageSize * oldPageSize
	for i, v := range bitmap {
		for ; v != 0; v &= v - 1 {
			bit := 8*i + bits.TrailingZeros8(v)
			if pos+oldPageSize > len(b) {
				return fmt.Errorf("%w: %s: the dirty vector lists more pages than the file holds", ErrBadLog, l.name)
			}
			l.pages = append(l.pages, dirtyPage{off: uint32(bit) * oldPageSize, data: b[pos : pos+oldPageSize]})
			pos += oldPageSize
		}
	}
	return nil
}

func le64(b []byte, o int) uint64 { return uint64(le32(b, o)) | uint64(le32(b, o+4))<<32 }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
