package lvm

import (
	"fmt"
	"io"
	"sort"
)

// Extent is a run of a logical volume stored contiguously on one PV.
type Extent struct {
	LVOffset int64  // bytes from the start of the LV
	PV       string // PVInfo.Name
	PVOffset int64  // bytes from the start of the PV
	Length   int64  // bytes
}

// ToPV maps the byte offset off of logical volume lv to the PV holding
// it: the PV's metadata name, the byte offset on that PV, and how many
// bytes from there on are stored contiguously on that PV (to the end of
// a stripe chunk, or of a run of up to 256 linear segments that follow
// each other on the PV). An offset outside the LV is ErrNotFound; an LV with
// segments other than linear or striped is ErrUnsupported.
func (vg *VG) ToPV(lv string, off int64) (pvName string, pvOff int64, contiguous int64, err error) {
	l, err := vg.LV(lv)
	if err != nil {
		return "", 0, 0, err
	}
	if err := l.checkSupported(); err != nil {
		return "", 0, 0, err
	}
	return vg.toPV(l, off)
}

func (vg *VG) toPV(l *LV, off int64) (string, int64, int64, error) {
	if off < 0 || off >= l.Size {
		return "", 0, 0, fmt.Errorf("%w: offset %d outside LV %s of %d bytes", ErrNotFound, off, l.Name, l.Size)
	}
	ext := vg.ExtentSize
	i := sort.Search(len(l.Segments), func(i int) bool {
		s := &l.Segments[i]
		return (s.StartExtent+s.ExtentCount)*ext > off
	})
	if i == len(l.Segments) {
		return "", 0, 0, fmt.Errorf("%w: offset %d in LV %s", ErrCorrupt, off, l.Name)
	}
	name, pvOff, n, err := vg.segToPV(&l.Segments[i], off-l.Segments[i].StartExtent*ext)
	if err != nil || l.Segments[i].StripeCount != 1 {
		return name, pvOff, n, err
	}
	// Extend over following linear segments that continue on the PV, a
	// bounded number of them so that each call stays cheap on an LV of
	// thousands of segments (the result only shrinks).
	for end, last := pvOff+n, min(len(l.Segments), i+1+maxMergedSegments); i+1 < last; i++ {
		s := &l.Segments[i+1]
		if !s.supported() || s.StripeCount != 1 {
			break
		}
		nn, o, m, err := vg.segToPV(s, 0)
		if err != nil || nn != name || o != end {
			break
		}
		n += m
		end += m
	}
	return name, pvOff, n, nil
}

// maxMergedSegments bounds the segments one toPV call merges.
const maxMergedSegments = 256

// segToPV maps byte off within segment s.
func (vg *VG) segToPV(s *Segment, off int64) (string, int64, int64, error) {
	ext := vg.ExtentSize
	segLen := s.ExtentCount * ext
	if s.StripeCount == 1 {
		pv := vg.pv(s.Stripes[0].PV)
		if pv == nil {
			return "", 0, 0, fmt.Errorf("%w: unknown PV %q", ErrCorrupt, s.Stripes[0].PV)
		}
		return pv.Name, pv.PEStart + s.Stripes[0].StartPE*ext + off, segLen - off, nil
	}
	cs := s.StripeSize
	chunk, within := off/cs, off%cs
	st := s.Stripes[chunk%s.StripeCount]
	pv := vg.pv(st.PV)
	if pv == nil {
		return "", 0, 0, fmt.Errorf("%w: unknown PV %q", ErrCorrupt, st.PV)
	}
	row := chunk / s.StripeCount
	return pv.Name, pv.PEStart + st.StartPE*ext + row*cs + within, cs - within, nil
}

// maxMapRuns bounds Map: a large LV striped in small chunks is better
// walked with ToPV.
const maxMapRuns = 1 << 20

// Map returns the runs of logical volume lv on its PVs, in LV order,
// adjacent runs merged. A striped segment yields one run per stripe
// chunk; an LV of more than a million runs is ErrUnsupported (use ToPV).
func (vg *VG) Map(lv string) ([]Extent, error) {
	l, err := vg.LV(lv)
	if err != nil {
		return nil, err
	}
	if err := l.checkSupported(); err != nil {
		return nil, err
	}
	var out []Extent
	for off := int64(0); off < l.Size; {
		name, pvOff, n, err := vg.toPV(l, off)
		if err != nil {
			return nil, err
		}
		if k := len(out) - 1; k >= 0 && out[k].PV == name && out[k].PVOffset+out[k].Length == pvOff {
			out[k].Length += n
		} else {
			if len(out) == maxMapRuns {
				return nil, fmt.Errorf("%w: LV %s maps to more than %d runs", ErrUnsupported, lv, maxMapRuns)
			}
			out = append(out, Extent{LVOffset: off, PV: name, PVOffset: pvOff, Length: n})
		}
		off += n
	}
	return out, nil
}

// LVReader reads a logical volume through the readers of its PVs.
type LVReader struct {
	vg  *VG
	lv  *LV
	pvs map[string]io.ReaderAt // by PVInfo.Name
}

// Open returns a reader for logical volume lv. pvs holds a reader for
// each PV the LV lives on, keyed by the PV's UUID (as in PV.UUID, dashes
// optional) or by its metadata name ("pv0"); PVs the LV does not use may
// be left out. A missing PV is ErrNotFound, an LV with segments other
// than linear or striped ErrUnsupported.
func (vg *VG) Open(lv string, pvs map[string]io.ReaderAt) (*LVReader, error) {
	l, err := vg.LV(lv)
	if err != nil {
		return nil, err
	}
	if err := l.checkSupported(); err != nil {
		return nil, err
	}
	m := make(map[string]io.ReaderAt)
	for k, r := range pvs {
		p, err := vg.PV(k)
		if err != nil {
			continue
		}
		m[p.Name] = r
	}
	for _, s := range l.Segments {
		for _, st := range s.Stripes {
			if m[st.PV] == nil {
				p := vg.pv(st.PV)
				return nil, fmt.Errorf("%w: LV %s needs PV %s (%s), not provided", ErrNotFound, lv, st.PV, p.UUID)
			}
		}
	}
	return &LVReader{vg: vg, lv: l, pvs: m}, nil
}

// Size returns the size of the logical volume in bytes.
func (r *LVReader) Size() int64 { return r.lv.Size }

// ReadAt implements io.ReaderAt.
func (r *LVReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("lvm: negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		if off >= r.lv.Size {
			return n, io.EOF
		}
		name, pvOff, c, err := r.vg.toPV(r.lv, off)
		if err != nil {
			return n, err
		}
		want := int64(len(p) - n)
		if c < want {
			want = c
		}
		m, err := r.pvs[name].ReadAt(p[n:n+int(want)], pvOff)
		n += m
		off += int64(m)
		if m < int(want) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("lvm: LV %s: reading %s at %d: %w", r.lv.Name, name, pvOff+int64(m), err)
		}
	}
	return n, nil
}
