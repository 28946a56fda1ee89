package p2v

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/standbykit/standbykit/p2v/ntfs"
	"github.com/standbykit/standbykit/p2v/regf"
)

// hiveLogSuffixes are the transaction logs Windows keeps beside a hive
// since Vista (the dual-logging scheme; a .LOG file, when present, is a
// dummy left by setup).
var hiveLogSuffixes = []string{".LOG1", ".LOG2"}

// recoverHive returns the hive Windows would load from a hive file's
// bytes: the bytes themselves when the hive is clean, else the hive with
// its transaction logs, read from beside it on the volume, replayed. The
// logs are read only for a dirty hive.
func recoverHive(vol *ntfs.Volume, hivePath string, b []byte) (*regf.Recovery, error) {
	if !regf.NeedsRecovery(b) {
		return regf.Recover(b, nil)
	}
	var logs []regf.LogFile
	for _, suffix := range hiveLogSuffixes {
		name := path.Base(hivePath) + suffix
		f, err := vol.Lookup(hivePath + suffix)
		if errors.Is(err, ntfs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", regf.ErrBadLog, name, err)
		}
		data, err := f.ReadAll()
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %w", regf.ErrBadLog, name, err)
		}
		logs = append(logs, regf.LogFile{Name: name, Data: data})
	}
	return regf.Recover(b, logs)
}

// replayWhy explains the patches that write a recovered hive back: which
// logs were replayed and how many pages of the file are written.
func replayWhy(hiveName string, rec *regf.Recovery, pages int) string {
	var logs []string
	for _, l := range rec.Replayed {
		logs = append(logs, l.String())
	}
	what := "no log held entries to replay"
	if len(logs) > 0 {
		what = "replayed " + strings.Join(logs, " and ")
	}
	return fmt.Sprintf("the %s hive was not cleanly written (Windows had changes in its transaction logs still to apply): %s, and the result written into the hive file in place (%d pages of 4 KiB, base block included) with equal sequence numbers, so that Windows has nothing left to replay over the fixes",
		hiveName, what, pages)
}

// pagesTouched counts the 4 KiB pages of a file that runs touch.
func pagesTouched(runs []byteRun) int {
	seen := map[int64]bool{}
	for _, r := range runs {
		for p := r.off / 4096; p <= (r.off+r.n-1)/4096; p++ {
			seen[p] = true
		}
	}
	return len(seen)
}

// pageRuns widens runs to the 4 KiB pages they touch, joining adjacent
// pages, within a file of size n.
func pageRuns(runs []byteRun, n int64) []byteRun {
	var out []byteRun
	for _, r := range runs {
		lo := r.off &^ 4095
		hi := min((r.off+r.n+4095)&^4095, n)
		if k := len(out); k > 0 && lo <= out[k-1].off+out[k-1].n {
			out[k-1].n = max(out[k-1].n, hi-out[k-1].off)
			continue
		}
		out = append(out, byteRun{lo, hi - lo})
	}
	return out
}
