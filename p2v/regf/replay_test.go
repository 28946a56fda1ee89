package regf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func replayed(r *Recovery) []string {
	var out []string
	for _, l := range r.Replayed {
		out = append(out, l.String())
	}
	return out
}

// TestRecoverMatchesWindows10: yarp's NewDirtyHive1 is a dirty hive with
// its two new-format logs and the file Windows 10 itself wrote after
// recovering it. Our replay must give exactly that file, base block
// included, whichever order the logs are passed in.
func TestRecoverMatchesWindows10(t *testing.T) {
	primary := realFile(t, "yarp/NewDirtyHive1/NewDirtyHive")
	logs := realLogs(t, "yarp/NewDirtyHive1/NewDirtyHive.LOG1", "yarp/NewDirtyHive1/NewDirtyHive.LOG2")
	windows := realFile(t, "yarp/NewDirtyHive1/RecoveredHive_Windows10")
	_, err := Open(primary)
	require.ErrorIs(t, err, ErrDirty)
	for _, order := range [][]LogFile{logs, {logs[1], logs[0]}} {
		r, err := Recover(primary, order)
		require.NoError(t, err)
		require.True(t, r.Dirty)
		// yarp's test: both logs apply, four log entries in all.
		require.Equal(t, []string{
			"NewDirtyHive.LOG1 (log entries 2-2, 1 dirty pages)",
			"NewDirtyHive.LOG2 (log entries 3-5, 3 dirty pages)",
		}, replayed(r))
		require.True(t, bytes.Equal(windows, r.File), "the replayed hive differs from Windows 10's")
		require.False(t, r.Grown())
	}
	// The order matters: the logs write the same pages, and LOG2 applied
	// before LOG1 would not give Windows' hive.
	reversed := bytes.Clone(primary)
	for _, lf := range []LogFile{logs[1], logs[0]} {
		l, err := parseLog(lf.Name, lf.Data)
		require.NoError(t, err)
		for _, e := range l.entries {
			for _, p := range e.pages {
				copy(reversed[baseBlockSize+int(p.off):], p.data)
			}
		}
	}
	require.False(t, bytes.Equal(windows[baseBlockSize:], reversed[baseBlockSize:]))

	// yarp's facts about the recovered hive.
	r, err := Recover(primary, logs)
	require.NoError(t, err)
	h, err := Open(r.File)
	require.NoError(t, err)
	for _, gone := range []string{"Key1", `Key2\Key2_1`, `Key2\Key2_2`} {
		_, err := h.Key(gone)
		require.ErrorIs(t, err, ErrNotFound, gone)
	}
	for _, k := range []string{"Key3", `Key3\Key3_1`, `Key3\Key3_2`, `key3\key3_3`} {
		_, err := h.Key(k)
		require.NoError(t, err, k)
	}
	k, err := h.Key("Key3")
	require.NoError(t, err)
	v, err := k.Value("")
	require.NoError(t, err)
	s, err := v.String()
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("1", 1440), s)
}

// TestRecoverSkipsOlderLog: in yarp's NewDirtyHive2 the primary is at
// sequence number 3 and LOG1 holds only entry 2, already in the file:
// only LOG2 applies, up to entry 5 (yarp's test).
func TestRecoverSkipsOlderLog(t *testing.T) {
	primary := realFile(t, "yarp/NewDirtyHive2/NewDirtyHive")
	r, err := Recover(primary, realLogs(t, "yarp/NewDirtyHive2/NewDirtyHive.LOG1", "yarp/NewDirtyHive2/NewDirtyHive.LOG2"))
	require.NoError(t, err)
	require.Equal(t, []string{"NewDirtyHive.LOG2 (log entries 3-5, 3 dirty pages)"}, replayed(r))
	require.Contains(t, strings.Join(r.Notes, "\n"), "NewDirtyHive.LOG1 is older than the primary file")
	p, s := binary.LittleEndian.Uint32(r.File[4:]), binary.LittleEndian.Uint32(r.File[8:])
	require.Equal(t, p, s)
	require.Equal(t, uint32(6), p, "past every sequence number seen")
}

// TestRecoverOldFormat: yarp's OldDirtyHive has an old-format log (dirty
// vector) and the file Windows 7 wrote after recovering it.
func TestRecoverOldFormat(t *testing.T) {
	primary := realFile(t, "yarp/OldDirtyHive/OldDirtyHive")
	windows := realFile(t, "yarp/OldDirtyHive/RecoveredHive_Windows7")
	r, err := Recover(primary, realLogs(t, "yarp/OldDirtyHive/OldDirtyHive.LOG1", "yarp/OldDirtyHive/OldDirtyHive.LOG2"))
	require.NoError(t, err)
	require.Equal(t, []string{"OldDirtyHive.LOG1 (64 dirty pages of 512 bytes)"}, replayed(r))
	require.Contains(t, r.Notes, "OldDirtyHive.LOG2 is unused")
	// The bins equal Windows 7's but for two fields Windows rewrote after
	// loading: the first bin's timestamp and the maximum value name length
	// of key 4500.
	h, err := Open(r.File)
	require.NoError(t, err)
	k4500, err := h.Key(`key_with_many_subkeys\4500`)
	require.NoError(t, err)
	maxValueName := k4500.Offset() + 4 + 0x3c
	var diff []int64
	for i := baseBlockSize; i < len(windows); i++ {
		if r.File[i] != windows[i] {
			diff = append(diff, int64(i))
		}
	}
	for _, o := range diff {
		inStamp := o >= baseBlockSize+20 && o < baseBlockSize+28
		require.True(t, inStamp || (o >= maxValueName && o < maxValueName+4), "byte %d differs from Windows 7's", o)
	}
	// yarp's test: key 1 is gone, find_me_in_log appears with Windows 7's
	// timestamp, and 4500 gains value V.
	_, err = h.Key(`key_with_many_subkeys\1`)
	require.ErrorIs(t, err, ErrNotFound)
	wh, err := Open(windows)
	require.NoError(t, err)
	ours, err := h.Key(`key_with_many_subkeys\5000\find_me_in_log`)
	require.NoError(t, err)
	theirs, err := wh.Key(`key_with_many_subkeys\5000\find_me_in_log`)
	require.NoError(t, err)
	require.Equal(t, theirs.nk[4:12], ours.nk[4:12])
	v, err := k4500.Value("V")
	require.NoError(t, err)
	ms, err := v.MultiString()
	require.NoError(t, err)
	require.Equal(t, []string{"a", "bb", "ccc"}, ms)
}

// TestRecoverBadBaseBlock: yarp's BadBaseBlockHive has a damaged primary
// base block; Windows rebuilds it from the log's copy (yarp: the format
// version becomes 1.3 and the keys are found).
func TestRecoverBadBaseBlock(t *testing.T) {
	primary := realFile(t, "yarp/BadBaseBlockHive/BadBaseBlockHive")
	_, err := Open(primary)
	require.Error(t, err)
	r, err := Recover(primary, realLogs(t, "yarp/BadBaseBlockHive/BadBaseBlockHive.LOG1", "yarp/BadBaseBlockHive/BadBaseBlockHive.LOG2"))
	require.NoError(t, err)
	h, err := Open(r.File)
	require.NoError(t, err)
	_, minor := h.Version()
	require.Equal(t, uint32(3), minor)
	_, err = h.Key("key_with_many_subkeys")
	require.NoError(t, err)
	// Without a log, a damaged base block cannot be recovered.
	_, err = Recover(primary, nil)
	require.ErrorIs(t, err, ErrBadLog)
}

// TestRecoverDamagedLogs: yarp's BadLogHive1-3 have logs whose base block
// or dirty vector is damaged; yarp refuses to recover them, and so do we.
func TestRecoverDamagedLogs(t *testing.T) {
	for _, d := range []string{"BadLogHive1", "BadLogHive2", "BadLogHive3"} {
		primary := realFile(t, "yarp/"+d+"/BadLogHive")
		r, err := Recover(primary, realLogs(t, "yarp/"+d+"/BadLogHive.LOG1", "yarp/"+d+"/BadLogHive.LOG2"))
		require.ErrorIs(t, err, ErrBadLog, d)
		require.Nil(t, r)
	}
}

// systemB returns regipy's SYSTEM_B, a dirty SYSTEM hive of Windows 10
// with its two logs.
func systemB(t testing.TB) ([]byte, []LogFile) {
	return realFile(t, "regipy/SYSTEM_B"), realLogs(t, "regipy/SYSTEM_B.LOG1", "regipy/SYSTEM_B.LOG2")
}

// TestRecoverRealSystem: regipy's test applies SYSTEM_B's logs and counts
// 315 dirty pages. Windows applies LOG1 (entries 2107-2110) then LOG2
// (2111-2130). regipy applies LOG2 before LOG1, so its counts of changed
// keys describe another hive; hivexml must read ours.
func TestRecoverRealSystem(t *testing.T) {
	primary, logs := systemB(t)
	r, err := Recover(primary, logs)
	require.NoError(t, err)
	require.Equal(t, []string{
		"SYSTEM_B.LOG1 (log entries 2107-2110, 10 dirty pages)",
		"SYSTEM_B.LOG2 (log entries 2111-2130, 305 dirty pages)",
	}, replayed(r))
	require.Equal(t, 315, r.Replayed[0].Pages+r.Replayed[1].Pages)
	require.Equal(t, uint32(2131), binary.LittleEndian.Uint32(r.File[4:]))
	require.False(t, r.Grown())
	require.Len(t, r.File, len(primary))
	before, after := hivexNodes(t, primary), hivexNodes(t, r.File)
	require.Greater(t, after, before, "the logs add keys")
}

// TestRecoverRealUserHives: regipy's tests state, for two user hives of
// Windows 10 and their logs, the dirty pages applied (132 and 158) and,
// for the one-log NTUSER.DAT, 527 keys and 60 values that the logs add
// (compared as regipy's compare_hives does; here through hivexml).
func TestRecoverRealUserHives(t *testing.T) {
	primary := realFile(t, "regipy/transactions_NTUSER.DAT")
	r, err := Recover(primary, realLogs(t, "regipy/transactions_ntuser.dat.log1", "regipy/transactions_ntuser.dat.log2"))
	require.NoError(t, err)
	require.Equal(t, []string{"transactions_ntuser.dat.log1 (log entries 566-588, 132 dirty pages)"}, replayed(r))
	keys, values := treeDiff(hivexTree(t, primary), hivexTree(t, r.File))
	require.Equal(t, 527, keys)
	require.Equal(t, 60, values)

	primary = realFile(t, "regipy/UsrClass.dat")
	r, err = Recover(primary, realLogs(t, "regipy/UsrClass.dat.LOG1", "regipy/UsrClass.dat.LOG2"))
	require.NoError(t, err)
	pages := 0
	for _, l := range r.Replayed {
		pages += l.Pages
	}
	require.Equal(t, 158, pages)
	require.Greater(t, hivexNodes(t, r.File), hivexNodes(t, primary))
}

// TestRecoverForeignLogs: logs of another hive are refused.
func TestRecoverForeignLogs(t *testing.T) {
	primary, _ := systemB(t)
	r, err := Recover(primary, realLogs(t, "regipy/UsrClass.dat.LOG1", "regipy/UsrClass.dat.LOG2"))
	require.ErrorIs(t, err, ErrForeignLog)
	require.Nil(t, r)
	_, err = Recover(primary, realLogs(t, "regipy/transactions_ntuser.dat.log1"))
	require.ErrorIs(t, err, ErrForeignLog)
}

// rehash recomputes the two hashes of the log entry at off, as Windows
// would have written them for the entry's present bytes.
func rehash(b []byte, off int) {
	h := b[off : off+int(binary.LittleEndian.Uint32(b[off+4:]))]
	binary.LittleEndian.PutUint64(h[24:], marvin32(logEntrySeed, h[logEntryHdrLen:]))
	binary.LittleEndian.PutUint64(h[32:], marvin32(logEntrySeed, h[:32]))
}

// TestRecoverTornAndInconsistent damages SYSTEM_B's real logs.
func TestRecoverTornAndInconsistent(t *testing.T) {
	primary, logs := systemB(t)
	entries := func(lf LogFile) []logEntry {
		l, err := parseLog(lf.Name, lf.Data)
		require.NoError(t, err)
		return l.entries
	}
	damaged := func(i int, edit func(b []byte)) []LogFile {
		out := []LogFile{logs[0], {Name: logs[1].Name, Data: bytes.Clone(logs[1].Data)}}
		if i == 0 {
			out[0] = LogFile{Name: logs[0].Name, Data: bytes.Clone(logs[0].Data)}
		}
		edit(out[i].Data)
		return out
	}
	e2 := entries(logs[1])
	last := e2[len(e2)-1]

	t.Run("torn last entry is dropped", func(t *testing.T) {
		r, err := Recover(primary, damaged(1, func(b []byte) { b[last.off+logEntryHdrLen+100] ^= 1 }))
		require.NoError(t, err)
		require.Len(t, r.Replayed, 2)
		require.Equal(t, uint32(2129), r.Replayed[1].Last)
		require.Equal(t, 19, r.Replayed[1].Entries)
		require.Contains(t, strings.Join(r.Dropped, "\n"), "is torn (data hash mismatch)")
	})
	t.Run("damaged entry followed by more", func(t *testing.T) {
		mid := e2[5]
		_, err := Recover(primary, damaged(1, func(b []byte) { b[mid.off+logEntryHdrLen+8] ^= 1 }))
		require.ErrorIs(t, err, ErrBadLog)
		require.ErrorContains(t, err, "which Windows would not replay")
	})
	t.Run("first log cut short", func(t *testing.T) {
		e1 := entries(logs[0])
		cut := []LogFile{{Name: logs[0].Name, Data: logs[0].Data[:e1[2].off+600]}, logs[1]}
		_, err := Recover(primary, cut)
		require.ErrorIs(t, err, ErrBadLog)
		require.ErrorContains(t, err, "the entries between are missing")
	})
	t.Run("an entry out of sequence", func(t *testing.T) {
		_, err := Recover(primary, damaged(1, func(b []byte) {
			binary.LittleEndian.PutUint32(b[e2[3].off+12:], 2200)
			rehash(b, e2[3].off)
		}))
		require.ErrorIs(t, err, ErrBadLog)
	})
	t.Run("log base block interrupted", func(t *testing.T) {
		_, err := Recover(primary, damaged(0, func(b []byte) {
			binary.LittleEndian.PutUint32(b[8:], 2106)
			binary.LittleEndian.PutUint32(b[checksumOff:], Checksum(b))
		}))
		require.ErrorIs(t, err, ErrBadLog)
		require.ErrorContains(t, err, "differ")
	})
	t.Run("a page outside the hive bins", func(t *testing.T) {
		_, err := Recover(primary, damaged(1, func(b []byte) {
			binary.LittleEndian.PutUint32(b[last.off+logEntryHdrLen:], 0x7fff0000)
			rehash(b, last.off)
		}))
		// The entry is not valid, so Windows stops before it: like a torn one.
		require.NoError(t, err)
	})
	t.Run("both logs at the same sequence number", func(t *testing.T) {
		_, err := Recover(primary, []LogFile{logs[0], {Name: "copy", Data: logs[0].Data}})
		require.ErrorIs(t, err, ErrBadLog)
	})
	t.Run("unused logs: the primary as it is", func(t *testing.T) {
		r, err := Recover(primary, []LogFile{{Name: "SYSTEM.LOG1"}, {Name: "SYSTEM.LOG2", Data: make([]byte, 4096)}})
		require.NoError(t, err)
		require.Empty(t, r.Replayed)
		require.Contains(t, strings.Join(r.Notes, "\n"), "Windows loads the primary file as it is")
		require.Equal(t, primary[baseBlockSize:], r.File[baseBlockSize:])
		_, err = Open(r.File)
		require.NoError(t, err)
	})
}

// TestRecoverGrows: a primary file shorter than the bins its logs need.
func TestRecoverGrows(t *testing.T) {
	primary := realFile(t, "yarp/NewDirtyHive1/NewDirtyHive")
	short := primary[:baseBlockSize+4*4096]
	r, err := Recover(short, realLogs(t, "yarp/NewDirtyHive1/NewDirtyHive.LOG1", "yarp/NewDirtyHive1/NewDirtyHive.LOG2"))
	require.NoError(t, err)
	require.True(t, r.Grown())
	require.Len(t, r.File, baseBlockSize+5*4096)
}

// TestRecoverCleanIgnoresLogs: a clean hive is returned as it is, its
// logs not even parsed (Windows ignores them).
func TestRecoverCleanIgnoresLogs(t *testing.T) {
	clean := minimalHive()
	r, err := Recover(clean, []LogFile{{Name: "junk", Data: []byte("not a log")}})
	require.NoError(t, err)
	require.False(t, r.Dirty)
	require.Empty(t, r.Replayed)
	require.True(t, &r.File[0] == &clean[0])
}

func TestRecoverRejectsNonHives(t *testing.T) {
	_, err := Recover([]byte("hbin"), nil)
	require.ErrorIs(t, err, ErrNotHive)
	b := minimalHive()
	binary.LittleEndian.PutUint32(b[28:], fileTypeLogNew)
	_, err = Recover(b, nil)
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = Recover(b[:100], nil)
	require.True(t, errors.Is(err, ErrCorrupt))
}

// TestParseLogRealEntries checks every entry of the real logs parses with
// valid hashes, and lists their sequence numbers as yarp and regipy see
// them.
func TestParseLogRealEntries(t *testing.T) {
	for name, want := range map[string][2]uint32{
		"regipy/SYSTEM_B.LOG1":                 {2107, 2110},
		"regipy/SYSTEM_B.LOG2":                 {2111, 2130},
		"regipy/UsrClass.dat.LOG1":             {287, 290},
		"regipy/UsrClass.dat.LOG2":             {291, 300},
		"regipy/transactions_ntuser.dat.log1":  {566, 588},
		"regipy/transactions_ntuser.dat.log2":  {562, 562},
		"yarp/NewDirtyHive1/NewDirtyHive.LOG2": {3, 5},
	} {
		l, err := parseLog(name, realFile(t, name))
		require.NoError(t, err, name)
		require.Equal(t, LogNew, l.format)
		require.Nil(t, l.torn, name)
		var seqs []uint32
		for _, e := range l.entries {
			seqs = append(seqs, e.seq)
		}
		require.Equal(t, want, [2]uint32{seqs[0], seqs[len(seqs)-1]}, name)
		require.True(t, slices.IsSorted(seqs))
		require.Len(t, seqs, int(want[1]-want[0]+1))
	}
}
