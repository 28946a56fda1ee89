package regf

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// logSeeds are real transaction logs and their primaries (see
// testdata/README.md), cut to a size the fuzzer can work with: the
// primaries to their bins, the big logs to their first entries.
func logSeeds(f *testing.F) (logs [][]byte, recoveries [][3][]byte) {
	cut := func(b []byte, n int) []byte { return b[:min(n, len(b))] }
	bins := func(b []byte) []byte { return cut(b, baseBlockSize+int(le32(b, 40))) }
	for _, name := range []string{
		"yarp/NewDirtyHive1/NewDirtyHive.LOG1",
		"yarp/NewDirtyHive1/NewDirtyHive.LOG2",
		"yarp/OldDirtyHive/OldDirtyHive.LOG1",
		"yarp/BadLogHive2/BadLogHive.LOG1",
		"yarp/BadLogHive3/BadLogHive.LOG2",
	} {
		logs = append(logs, realFile(f, name))
	}
	// The first entries of a real SYSTEM log (2107 and 2108).
	sys := realFile(f, "regipy/SYSTEM_B.LOG1")
	l, err := parseLog("seed", sys)
	if err != nil || len(l.entries) < 3 {
		f.Fatalf("SYSTEM_B.LOG1: %v", err)
	}
	logs = append(logs, cut(sys, l.entries[2].off))
	for _, d := range []string{"NewDirtyHive1", "NewDirtyHive2"} {
		recoveries = append(recoveries, [3][]byte{
			bins(realFile(f, "yarp/"+d+"/NewDirtyHive")),
			realFile(f, "yarp/"+d+"/NewDirtyHive.LOG1"),
			realFile(f, "yarp/"+d+"/NewDirtyHive.LOG2"),
		})
	}
	return logs, recoveries
}

func logErrorTyped(err error) bool {
	return errors.Is(err, ErrBadLog) || errors.Is(err, ErrForeignLog) || typedError(err)
}

// FuzzParseLog parses arbitrary bytes as a transaction log: errors must
// be typed, nothing may panic, and what parses must stay inside the file.
//
//	go test -run '^$' -fuzz FuzzParseLog -fuzzminimizetime 200x ./p2v/regf
func FuzzParseLog(f *testing.F) {
	logs, _ := logSeeds(f)
	for _, b := range logs {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		l, err := parseLog("fuzz", b)
		if err != nil {
			if !errors.Is(err, ErrBadLog) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		for _, e := range append(l.entries, l.beyond...) {
			if e.binsSize == 0 || e.binsSize%binsAlign != 0 {
				t.Fatalf("entry %d accepted with bins size %#x", e.seq, e.binsSize)
			}
			for _, p := range e.pages {
				if uint64(p.off)+uint64(len(p.data)) > uint64(e.binsSize) {
					t.Fatalf("page at %#x of %d bytes past the bins (%#x)", p.off, len(p.data), e.binsSize)
				}
			}
		}
		for _, p := range l.pages {
			if uint64(p.off)+uint64(len(p.data)) > uint64(l.binsSize) {
				t.Fatalf("old-format page at %#x past the bins (%#x)", p.off, l.binsSize)
			}
		}
	})
}

// FuzzRecover replays arbitrary logs over an arbitrary primary: errors
// must be typed, and a recovery must be a clean hive that Open accepts,
// never shorter than the primary.
//
//	go test -run '^$' -fuzz FuzzRecover -fuzzminimizetime 200x ./p2v/regf
func FuzzRecover(f *testing.F) {
	_, recoveries := logSeeds(f)
	for _, r := range recoveries {
		f.Add(r[0], r[1], r[2])
	}
	f.Fuzz(func(t *testing.T, primary, log1, log2 []byte) {
		if len(primary)+len(log1)+len(log2) > 1<<20 {
			return
		}
		checkRecover(t, primary, log1, log2)
		// Mutated entries mostly fail their hashes; with the hashes made
		// right again the fuzzer reaches the replay itself.
		checkRecover(t, primary, rehashAll(log1), rehashAll(log2))
	})
}

// rehashAll returns a copy of a log with the hashes of every entry that
// fits the file recomputed.
func rehashAll(b []byte) []byte {
	b = slices.Clone(b)
	for off := logBaseLen; off+logEntryHdrLen <= len(b); off += oldPageSize {
		size := int(le32(b, off+4))
		if string(b[off:off+4]) != "HvLE" || size < logEntryHdrLen || size > len(b)-off {
			continue
		}
		h := b[off : off+size]
		binary.LittleEndian.PutUint64(h[24:], marvin32(logEntrySeed, h[logEntryHdrLen:]))
		binary.LittleEndian.PutUint64(h[32:], marvin32(logEntrySeed, h[:32]))
	}
	return b
}

func checkRecover(t *testing.T, primary, log1, log2 []byte) {
	r, err := Recover(primary, []LogFile{{Name: "LOG1", Data: log1}, {Name: "LOG2", Data: log2}})
	if err != nil {
		if !logErrorTyped(err) {
			t.Fatalf("untyped error: %v", err)
		}
		return
	}
	if !r.Dirty {
		if &r.File[0] != &primary[0] {
			t.Fatal("a clean hive was copied")
		}
		return
	}
	if len(r.File) < len(primary) {
		t.Fatalf("recovered file of %d bytes, primary %d", len(r.File), len(primary))
	}
	if NeedsRecovery(r.File) {
		t.Fatal("the recovered hive is still dirty")
	}
	if _, err := Open(r.File); err != nil {
		t.Fatalf("the recovered hive does not open: %v", err)
	}
}
