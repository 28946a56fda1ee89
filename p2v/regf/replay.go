package regf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// Recovery is the hive Windows would load at its next boot: the primary
// file with what its transaction logs hold replayed over it, as the
// kernel does for a dirty hive.
type Recovery struct {
	// File is the recovered hive file, with a clean base block (equal
	// sequence numbers, valid checksum) so that Windows has nothing left to
	// replay once it is written back. It is as long as the primary file,
	// or longer when the logs grew the hive (see Grown).
	File []byte
	// Dirty reports whether the primary file needed recovery; when false,
	// File is the primary file itself and no log was read.
	Dirty bool
	// Replayed lists the logs whose data was applied, in the order
	// applied.
	Replayed []ReplayedLog
	// Notes explain choices made on the way (logs left out and why).
	Notes []string
	// Dropped describes log entries Windows would drop too (a torn last
	// entry): changes the machine made that the recovered hive lacks.
	Dropped []string

	primary []byte
}

// ReplayedLog is what was taken from one transaction log file.
type ReplayedLog struct {
	Name   string
	Format LogFormat
	// First and Last are the sequence numbers of the log entries applied
	// (new format; zero for the old format).
	First, Last uint32
	Entries     int // log entries applied (new format)
	Pages       int // dirty pages applied
}

func (r ReplayedLog) String() string {
	if r.Format == LogOld {
		return fmt.Sprintf("%s (%d dirty pages of 512 bytes)", r.Name, r.Pages)
	}
	return fmt.Sprintf("%s (log entries %d-%d, %d dirty pages)", r.Name, r.First, r.Last, r.Pages)
}

// Grown reports whether the recovered hive is longer than the primary
// file: writing it back would mean growing the file.
func (r *Recovery) Grown() bool { return len(r.File) > len(r.primary) }

// after reports whether sequence number a comes after b, allowing for
// wrap-around as Windows does.
func after(a, b uint32) bool { return int32(a-b) > 0 }

// NeedsRecovery reports whether Windows would replay the transaction logs
// of a hive file before loading it: its sequence numbers differ or its
// base block checksum is wrong. Callers can read the logs only then.
func NeedsRecovery(primary []byte) bool {
	if len(primary) < baseBlockSize {
		return true
	}
	return !baseBlockValid(primary) || le32(primary, 4) != le32(primary, 8)
}

func baseBlockValid(b []byte) bool {
	sum := le32(b, checksumOff)
	return sum == Checksum(b) || sum == rawChecksum(b)
}

// Recover returns the hive Windows would see at its next boot. A clean
// primary file (equal sequence numbers, valid checksum) is returned as it
// is, without looking at the logs, as Windows ignores them then. For a
// dirty one it replays the logs as the kernel does: new-format log
// entries from the log holding the earlier ones, starting at its first
// entry when that is not older than the primary's secondary sequence
// number, each next entry only if its hashes hold and its sequence number
// follows, then the other log if it carries on the sequence; or the
// dirty pages of the newest applicable old-format log. Unused (empty)
// logs are skipped.
//
// It fails with ErrForeignLog for a log whose base block names another
// hive, and with ErrBadLog when a log is damaged or the logs contradict
// each other: a base block that is not valid, entries beyond those
// replayed that Windows would skip, logs of both formats, or a hive that
// does not parse once replayed. A torn last entry (the hashes fail and
// nothing later follows) is dropped, as Windows drops it, with a note.
func Recover(primary []byte, logs []LogFile) (*Recovery, error) {
	if len(primary) < 4 || string(primary[:4]) != "regf" {
		return nil, fmt.Errorf("%w: no regf signature", ErrNotHive)
	}
	if len(primary) < baseBlockSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the base block", ErrCorrupt, len(primary))
	}
	if t := le32(primary, 28); t != 0 {
		return nil, fmt.Errorf("%w: file type %d is not a primary hive file", ErrUnsupported, t)
	}
	r := &Recovery{File: primary, primary: primary}
	if !NeedsRecovery(primary) {
		return r, nil
	}
	baseOK := baseBlockValid(primary)
	seq1, seq2 := le32(primary, 4), le32(primary, 8)
	r.Dirty = true
	var used []*txLog
	for _, lf := range logs {
		l, err := parseLog(lf.Name, lf.Data)
		if err != nil {
			return nil, err
		}
		if l.format == LogUnused {
			r.Notes = append(r.Notes, lf.Name+" is unused")
			continue
		}
		if err := sameHive(primary, baseOK, l); err != nil {
			return nil, err
		}
		used = append(used, l)
	}
	if len(used) == 2 && used[0].format != used[1].format {
		return nil, fmt.Errorf("%w: %s is in the %v but %s in the %v", ErrBadLog, used[0].name, used[0].format, used[1].name, used[1].format)
	}
	rp := &replay{file: slices.Clone(primary), baseOK: baseOK, seq2: seq2, r: r, top: seq1, limit: int64(len(primary))}
	for _, lf := range logs {
		rp.limit += int64(len(lf.Data))
	}
	rp.see(seq2)
	var err error
	switch {
	case len(used) == 0:
		if !baseOK {
			return nil, fmt.Errorf("%w: the primary base block is damaged and no transaction log holds a copy", ErrBadLog)
		}
	case used[0].format == LogNew:
		err = rp.newFormat(used)
	default:
		err = rp.oldFormat(used, primary)
	}
	if err != nil {
		return nil, err
	}
	if len(r.Replayed) == 0 {
		if !baseOK {
			return nil, fmt.Errorf("%w: the primary base block is damaged and no log applies to recover it", ErrBadLog)
		}
		r.Notes = append(r.Notes, "no transaction log holds entries to replay: Windows loads the primary file as it is")
	}
	rp.finishBaseBlock(used)
	r.File = rp.file
	if _, err := Open(r.File); err != nil {
		return nil, fmt.Errorf("%w: the hive does not parse once the logs are replayed: %w", ErrBadLog, err)
	}
	return r, nil
}

// sameHive checks that a log's copy of the base block names the same
// hive as the primary's: the same file name field and the same resource
// manager GUID.
func sameHive(primary []byte, baseOK bool, l *txLog) error {
	if !baseOK {
		return nil
	}
	name := func(b []byte) string { return strings.TrimRight(decodeUTF16(b[48:112]), "\x00") }
	if !bytes.Equal(primary[48:112], l.base[48:112]) {
		return fmt.Errorf("%w: %s belongs to hive %q, the primary file is %q", ErrForeignLog, l.name, name(l.base), name(primary))
	}
	if rm := primary[112:128]; !allZero(rm) && !bytes.Equal(rm, l.base[112:128]) {
		return fmt.Errorf("%w: %s has resource manager %x, the primary file %x", ErrForeignLog, l.name, l.base[112:128], rm)
	}
	return nil
}

type replay struct {
	file     []byte
	baseOK   bool
	seq2     uint32
	r        *Recovery
	last     uint32 // sequence number of the last entry applied
	applied  bool
	flags    uint32 // log entry flags of the last entry applied
	binsSize uint32
	baseFrom *txLog // the log whose base block copy is used
	top      uint32 // highest sequence number seen anywhere
	limit    int64  // the largest the file can grow to
}

// write puts a dirty page in place. Past the end of the file it grows
// the file, but no further than the logs' pages could fill: beyond that
// the hive would have gaps of zeros where bins must be.
func (rp *replay) write(off uint32, data []byte) error {
	end := baseBlockSize + int64(off) + int64(len(data))
	if end > rp.limit {
		return fmt.Errorf("%w: a dirty page at bins offset %#x lies far past the end of the %d-byte hive file", ErrBadLog, off, len(rp.r.primary))
	}
	if end > int64(len(rp.file)) {
		rp.file = append(rp.file, make([]byte, end-int64(len(rp.file)))...)
	}
	copy(rp.file[baseBlockSize+int(off):], data)
	return nil
}

func (rp *replay) see(seq uint32) {
	if after(seq, rp.top) {
		rp.top = seq
	}
}

// newFormat replays new-format logs.
func (rp *replay) newFormat(logs []*txLog) error {
	slices.SortStableFunc(logs, func(a, b *txLog) int {
		if after(b.seq, a.seq) {
			return -1
		}
		if after(a.seq, b.seq) {
			return 1
		}
		return 0
	})
	if len(logs) == 2 && logs[0].seq == logs[1].seq {
		return fmt.Errorf("%w: %s and %s both start at sequence number %d", ErrBadLog, logs[0].name, logs[1].name, logs[0].seq)
	}
	for _, l := range logs {
		rp.see(l.seq)
		for _, e := range l.entries {
			rp.see(e.seq)
		}
	}
	if !rp.baseOK {
		// Windows then trusts only the log with the latest entries.
		skipped := logs[:len(logs)-1]
		logs = logs[len(logs)-1:]
		for _, l := range skipped {
			rp.r.Notes = append(rp.r.Notes, l.name+" is left out: the primary base block is damaged, so only the log with the latest entries is used")
		}
	}
	for _, l := range logs {
		switch {
		case rp.applied && l.seq != rp.last+1:
			if after(l.seq, rp.last) {
				return fmt.Errorf("%w: %s starts at sequence number %d but replay stopped at %d: the entries between are missing", ErrBadLog, l.name, l.seq, rp.last)
			}
			rp.r.Notes = append(rp.r.Notes, fmt.Sprintf("%s is older than the entries replayed (starts at %d)", l.name, l.seq))
			continue
		case rp.baseOK && after(rp.seq2, l.seq):
			rp.r.Notes = append(rp.r.Notes, fmt.Sprintf("%s is older than the primary file (starts at %d, the primary is at %d)", l.name, l.seq, rp.seq2))
			continue
		}
		if err := rp.applyEntries(l); err != nil {
			return err
		}
	}
	// Any well-formed entry newer than the last replayed is data Windows
	// would skip: the logs contradict each other.
	for _, l := range logs {
		for _, e := range slices.Concat(l.entries, l.beyond) {
			if rp.applied && after(e.seq, rp.last) || !rp.applied && rp.baseOK && !after(rp.seq2, e.seq) {
				return fmt.Errorf("%w: %s holds entry %d, which Windows would not replay (replay stops at %d)", ErrBadLog, l.name, e.seq, rp.last)
			}
		}
	}
	return nil
}

// applyEntries applies the entries of l that follow on from its first,
// which must carry the log's own sequence number.
func (rp *replay) applyEntries(l *txLog) error {
	want := l.seq
	rl := ReplayedLog{Name: l.name, Format: LogNew, First: want}
	i := 0
	for ; i < len(l.entries) && l.entries[i].seq == want; i++ {
		e := l.entries[i]
		for _, p := range e.pages {
			if err := rp.write(p.off, p.data); err != nil {
				return fmt.Errorf("%s, entry %d: %w", l.name, e.seq, err)
			}
		}
		rl.Entries++
		rl.Pages += len(e.pages)
		rl.Last = e.seq
		rp.last, rp.applied = e.seq, true
		rp.flags, rp.binsSize = e.flags, e.binsSize
		rp.baseFrom = l
		want++
	}
	if i == len(l.entries) && l.torn != nil {
		rp.r.Dropped = append(rp.r.Dropped, fmt.Sprintf("%s: the entry at offset %#x is torn (%s): dropped, as Windows drops it", l.name, l.torn.off, l.torn.reason))
	}
	if rl.Entries == 0 {
		if len(l.entries) > 0 {
			return fmt.Errorf("%w: %s starts at sequence number %d but its first entry is %d", ErrBadLog, l.name, l.seq, l.entries[0].seq)
		}
		return nil
	}
	rp.r.Replayed = append(rp.r.Replayed, rl)
	return nil
}

// oldFormat applies the dirty pages of the newest applicable old-format
// log: one whose last written timestamp is not older than the primary's.
func (rp *replay) oldFormat(logs []*txLog, primary []byte) error {
	stamp := uint64(le32(primary, 12)) | uint64(le32(primary, 16))<<32
	var pick *txLog
	for _, l := range logs {
		rp.see(l.seq)
		if rp.baseOK && l.stamp < stamp {
			rp.r.Notes = append(rp.r.Notes, l.name+" is older than the primary file")
			continue
		}
		if pick == nil || l.stamp > pick.stamp {
			pick = l
		}
	}
	if pick == nil {
		return nil
	}
	for _, p := range pick.pages {
		if err := rp.write(p.off, p.data); err != nil {
			return fmt.Errorf("%s: %w", pick.name, err)
		}
	}
	rp.baseFrom = pick
	rp.binsSize = pick.binsSize
	rp.flags = le32(pick.base, 144)
	rp.r.Replayed = append(rp.r.Replayed, ReplayedLog{Name: pick.name, Format: LogOld, Pages: len(pick.pages)})
	return nil
}

// finishBaseBlock makes the base block clean: both sequence numbers
// past every one seen in the primary and its logs (so no entry left in a
// log can pass for a newer one), the bins size and root of the replayed
// data, the first flag bit as the last entry had it, and the checksum.
// A damaged primary base block is rebuilt from the log's copy.
func (rp *replay) finishBaseBlock(logs []*txLog) {
	b := rp.file[:baseBlockSize]
	if rp.baseFrom != nil {
		if !rp.baseOK {
			copy(b, rp.baseFrom.base)
			binary.LittleEndian.PutUint32(b[28:], 0) // primary file
		}
		copy(b[36:40], rp.baseFrom.base[36:40])
		binary.LittleEndian.PutUint32(b[40:], rp.binsSize)
		fl := le32(b, 144)&^1 | rp.flags&1
		binary.LittleEndian.PutUint32(b[144:], fl)
	}
	seq := rp.top + 1
	binary.LittleEndian.PutUint32(b[4:], seq)
	binary.LittleEndian.PutUint32(b[8:], seq)
	binary.LittleEndian.PutUint32(b[checksumOff:], Checksum(b))
}
