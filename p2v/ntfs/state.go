package ntfs

import (
	"encoding/binary"
)

// Well-known records of the volume's state.
const (
	recLogFile = 2
	recVolume  = 3

	atVolumeInformation = 0x70

	volumeDirty = 0x0001 // $VOLUME_INFORMATION flag: chkdsk is due

	logNoClient       = 0xFFFF // restart area: no client in use
	logVolumeIsClean  = 0x0002 // restart area flag
	maxLogRestartPage = 64 << 10
)

// State is what the volume says about how it was last left: whether
// Windows marked it dirty (a check is due at the next mount) and whether
// its journal ($LogFile) has operations that Windows would replay at the
// next mount. An offline reader sees the volume as it is on disk, without
// that replay, so files changed by those operations may read stale.
type State struct {
	Dirty      bool
	LogPending bool
}

// State reads the dirty flag from $Volume and the journal state from the
// restart area of $LogFile. A $LogFile that is reset (all 0xFF, as
// ntfsfix and chkdsk leave it) or whose restart area says the volume is
// clean has nothing pending; a restart area that cannot be read is taken
// as pending, since nothing then shows the journal was emptied.
func (v *Volume) State() (State, error) {
	var s State
	vol, err := v.loadFile(recVolume, "$Volume")
	if err != nil {
		return s, err
	}
	for _, a := range vol.attrs {
		if a.typ == atVolumeInformation && !a.nonResident && len(a.value) >= 12 {
			s.Dirty = binary.LittleEndian.Uint16(a.value[10:])&volumeDirty != 0
		}
	}
	logf, err := v.loadFile(recLogFile, "$LogFile")
	if err != nil {
		return s, err
	}
	s.LogPending = !logClean(logf)
	return s, nil
}

// logClean reads the two restart pages at the start of $LogFile and
// reports whether the newer valid one says the journal has nothing to
// replay.
func logClean(f *File) bool {
	head := make([]byte, 4096)
	if n, _ := f.ReadAt(head, 0); n < len(head) {
		return false
	}
	if allByte(head, 0xFF) {
		return true
	}
	pageSize := int(binary.LittleEndian.Uint32(head[0x10:]))
	if pageSize < 512 || pageSize > maxLogRestartPage || pageSize&(pageSize-1) != 0 {
		return false
	}
	var best []byte
	var bestLSN uint64
	for i := range 2 {
		page := make([]byte, pageSize)
		if n, _ := f.ReadAt(page, int64(i*pageSize)); n != pageSize {
			continue
		}
		if string(page[:4]) != "RSTR" || applyFixups(page, "$LogFile restart page") != nil {
			continue
		}
		ra := int(binary.LittleEndian.Uint16(page[0x18:]))
		if ra < 0x1E || ra+16 > pageSize {
			continue
		}
		area := page[ra:]
		if lsn := binary.LittleEndian.Uint64(area); best == nil || lsn > bestLSN {
			best, bestLSN = area, lsn
		}
	}
	if best == nil {
		return false
	}
	inUse := binary.LittleEndian.Uint16(best[12:])
	flags := binary.LittleEndian.Uint16(best[14:])
	return inUse == logNoClient || flags&logVolumeIsClean != 0
}

func allByte(b []byte, c byte) bool {
	for _, x := range b {
		if x != c {
			return false
		}
	}
	return true
}
