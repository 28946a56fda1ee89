package p2v

import (
	"strings"

	"github.com/standbykit/standbykit/p2v/ntfs"
)

// warnVolumeState warns when Windows left the NTFS volume not cleanly
// shut down: it is read as it is on disk, without the journal replay and
// check Windows will do when it mounts it.
func warnVolumeState(plan *Plan, d int, part Partition, vol *ntfs.Volume) {
	st, err := vol.State()
	if err != nil {
		plan.warnf("disk %d partition %d: the NTFS volume's state cannot be read (%v): it may not have been shut down cleanly", d, part.Number, err)
		return
	}
	var what []string
	if st.Dirty {
		what = append(what, "is marked dirty (Windows will check it at boot)")
	}
	if st.LogPending {
		what = append(what, "has operations in its journal ($LogFile) that Windows will replay when it mounts it")
	}
	if len(what) > 0 {
		plan.warnf("disk %d partition %d: the NTFS volume %s: it was not shut down cleanly and is read as it is on disk, without that replay, so the files Windows changed last may read stale",
			d, part.Number, strings.Join(what, " and "))
	}
}
