package lvm

import (
	"fmt"
	"sort"
	"strings"
)

// VG is a volume group as described by its metadata text. Sizes and
// offsets are in bytes; the metadata's own sector and extent counts are
// converted on parsing.
type VG struct {
	Name       string
	UUID       string
	Seqno      int64
	Status     []string
	ExtentSize int64 // bytes
	PVs        []PVInfo
	LVs        []LV

	// Indexes of PVs and LVs by name, built by ParseMetadata so that
	// metadata listing thousands of them is not read in quadratic time.
	// Lookups check a hit against the slices and scan them on a miss.
	pvIndex, lvIndex map[string]int
}

// PVInfo is one entry of the VG's physical_volumes section.
type PVInfo struct {
	Name    string // the metadata's name for it, "pv0", "pv1", ...
	UUID    string // dashed, as in the PV label
	Device  string // device path hint recorded at the last write
	Status  []string
	DevSize int64 // bytes
	PEStart int64 // bytes: where extent 0 starts on the PV
	PECount int64 // extents
}

// LV is one entry of the VG's logical_volumes section, its segments
// sorted by StartExtent.
type LV struct {
	Name     string
	UUID     string
	Status   []string
	Size     int64 // bytes, the sum of its segments
	Segments []Segment
}

// Visible reports whether the LV is a user-visible volume (not an
// internal one such as a thin pool's data volume or a mirror log).
func (lv *LV) Visible() bool {
	for _, s := range lv.Status {
		if s == "VISIBLE" {
			return true
		}
	}
	return false
}

// Segment is a run of an LV's logical extents with one mapping.
type Segment struct {
	StartExtent int64
	ExtentCount int64
	Type        string // "striped" for linear and striped segments
	// For striped segments: StripeCount areas of ExtentCount/StripeCount
	// extents each, interleaved in StripeSize chunks (bytes, 0 when
	// StripeCount is 1).
	StripeCount int64
	StripeSize  int64
	Stripes     []Stripe
}

// Stripe is one area of a striped segment: a run of extents on a PV.
type Stripe struct {
	PV      string // PVInfo.Name
	StartPE int64  // first physical extent on that PV
}

// supported reports whether the segment is mapped by this package.
func (s *Segment) supported() bool {
	return s.Type == "striped" || s.Type == "linear"
}

const maxBytes = 1 << 62

// ParseMetadata parses an LVM2 metadata text, as stored in a metadata
// area or written by vgcfgbackup, into a VG.
func ParseMetadata(text []byte) (*VG, error) {
	root, err := parseConfig(text)
	if err != nil {
		return nil, err
	}
	if c, ok := root.str("contents"); ok && c != "Text Format Volume Group" {
		return nil, fmt.Errorf("%w: metadata contents %q", ErrUnsupported, c)
	}
	if v, ok := root.keys["version"]; ok && (v.kind != kindInt || v.i != 1) {
		return nil, fmt.Errorf("%w: metadata version", ErrUnsupported)
	}
	var s *cfgSection
	for _, c := range root.sections {
		if _, ok := c.keys["extent_size"]; ok {
			s = c
			break
		}
	}
	if s == nil {
		return nil, fmt.Errorf("%w: no volume group in metadata", ErrCorrupt)
	}
	vg := &VG{Name: s.name, Status: s.strList("status"), pvIndex: map[string]int{}, lvIndex: map[string]int{}}
	vg.UUID, _ = s.str("id")
	vg.Seqno, _ = s.int("seqno")
	es, ok := s.int("extent_size")
	if !ok || es <= 0 || es > maxBytes/SectorSize {
		return nil, fmt.Errorf("%w: VG %s: extent_size", ErrCorrupt, vg.Name)
	}
	vg.ExtentSize = es * SectorSize

	if pvs := s.section("physical_volumes"); pvs != nil {
		for _, p := range pvs.sections {
			pi, err := parsePV(p, vg.ExtentSize)
			if err != nil {
				return nil, fmt.Errorf("VG %s: %w", vg.Name, err)
			}
			if _, dup := vg.pvIndex[pi.Name]; dup {
				return nil, fmt.Errorf("%w: VG %s: PV %s listed twice", ErrCorrupt, vg.Name, pi.Name)
			}
			vg.pvIndex[pi.Name] = len(vg.PVs)
			vg.PVs = append(vg.PVs, pi)
		}
	}
	if lvs := s.section("logical_volumes"); lvs != nil {
		for _, l := range lvs.sections {
			lv, err := vg.parseLV(l)
			if err != nil {
				return nil, fmt.Errorf("VG %s: %w", vg.Name, err)
			}
			if _, dup := vg.lvIndex[lv.Name]; dup {
				return nil, fmt.Errorf("%w: VG %s: LV %s listed twice", ErrCorrupt, vg.Name, lv.Name)
			}
			vg.lvIndex[lv.Name] = len(vg.LVs)
			vg.LVs = append(vg.LVs, lv)
		}
	}
	return vg, nil
}

func parsePV(p *cfgSection, extent int64) (PVInfo, error) {
	pi := PVInfo{Name: p.name, Status: p.strList("status")}
	var ok bool
	if pi.UUID, ok = p.str("id"); !ok {
		return pi, fmt.Errorf("%w: PV %s: no id", ErrCorrupt, p.name)
	}
	pi.Device, _ = p.str("device")
	start, ok1 := p.int("pe_start")
	count, ok2 := p.int("pe_count")
	dev, _ := p.int("dev_size")
	if !ok1 || !ok2 || start < 0 || count < 0 || dev < 0 ||
		start > maxBytes/SectorSize || dev > maxBytes/SectorSize || count > (maxBytes-start*SectorSize)/extent {
		return pi, fmt.Errorf("%w: PV %s: pe_start/pe_count/dev_size", ErrCorrupt, p.name)
	}
	pi.PEStart, pi.PECount, pi.DevSize = start*SectorSize, count, dev*SectorSize
	return pi, nil
}

func (vg *VG) parseLV(l *cfgSection) (LV, error) {
	lv := LV{Name: l.name, Status: l.strList("status")}
	lv.UUID, _ = l.str("id")
	for _, ss := range l.sections {
		seg, err := vg.parseSegment(ss)
		if err != nil {
			return lv, fmt.Errorf("LV %s: %s: %w", lv.Name, ss.name, err)
		}
		lv.Segments = append(lv.Segments, seg)
	}
	if n, ok := l.int("segment_count"); ok && n != int64(len(lv.Segments)) {
		return lv, fmt.Errorf("%w: LV %s: segment_count %d but %d segments", ErrCorrupt, lv.Name, n, len(lv.Segments))
	}
	sort.SliceStable(lv.Segments, func(i, j int) bool { return lv.Segments[i].StartExtent < lv.Segments[j].StartExtent })
	var next int64
	for _, seg := range lv.Segments {
		if seg.StartExtent != next {
			return lv, fmt.Errorf("%w: LV %s: segment at extent %d, expected %d", ErrCorrupt, lv.Name, seg.StartExtent, next)
		}
		next += seg.ExtentCount
		if next > maxBytes/vg.ExtentSize {
			return lv, fmt.Errorf("%w: LV %s too large", ErrCorrupt, lv.Name)
		}
	}
	lv.Size = next * vg.ExtentSize
	return lv, nil
}

func (vg *VG) parseSegment(s *cfgSection) (Segment, error) {
	var seg Segment
	var ok bool
	seg.StartExtent, ok = s.int("start_extent")
	if !ok || seg.StartExtent < 0 {
		return seg, fmt.Errorf("%w: start_extent", ErrCorrupt)
	}
	seg.ExtentCount, ok = s.int("extent_count")
	if !ok || seg.ExtentCount <= 0 || seg.ExtentCount > maxBytes/vg.ExtentSize {
		return seg, fmt.Errorf("%w: extent_count", ErrCorrupt)
	}
	if seg.Type, ok = s.str("type"); !ok {
		return seg, fmt.Errorf("%w: no segment type", ErrCorrupt)
	}
	if !seg.supported() {
		// Other types (mirror, raid*, thin*, cache*, snapshot, vdo, ...)
		// keep their type only; Open and ToPV refuse them.
		return seg, nil
	}
	seg.StripeCount = 1
	if n, ok := s.int("stripe_count"); ok {
		seg.StripeCount = n
	} else if seg.Type == "striped" {
		return seg, fmt.Errorf("%w: no stripe_count", ErrCorrupt)
	}
	if seg.StripeCount < 1 || seg.StripeCount > 1024 || seg.ExtentCount%seg.StripeCount != 0 {
		return seg, fmt.Errorf("%w: stripe_count %d for %d extents", ErrCorrupt, seg.StripeCount, seg.ExtentCount)
	}
	perStripe := seg.ExtentCount / seg.StripeCount
	if seg.StripeCount > 1 {
		ss, ok := s.int("stripe_size")
		if !ok || ss <= 0 || ss > vg.ExtentSize/SectorSize || (perStripe*vg.ExtentSize)%(ss*SectorSize) != 0 {
			return seg, fmt.Errorf("%w: stripe_size", ErrCorrupt)
		}
		seg.StripeSize = ss * SectorSize
	}
	v, ok := s.keys["stripes"]
	if !ok || v.kind != kindList || int64(len(v.list)) != 2*seg.StripeCount {
		return seg, fmt.Errorf("%w: stripes list does not hold %d PV/extent pairs", ErrCorrupt, seg.StripeCount)
	}
	for i := 0; i < len(v.list); i += 2 {
		name, pe := v.list[i], v.list[i+1]
		if name.kind != kindString || pe.kind != kindInt || pe.i < 0 {
			return seg, fmt.Errorf("%w: stripes entry %d", ErrCorrupt, i/2)
		}
		pv := vg.pv(name.s)
		if pv == nil {
			return seg, fmt.Errorf("%w: stripe on unknown PV %q", ErrCorrupt, name.s)
		}
		if pe.i > pv.PECount || perStripe > pv.PECount-pe.i {
			return seg, fmt.Errorf("%w: extents %d+%d beyond the %d of %s", ErrCorrupt, pe.i, perStripe, pv.PECount, pv.Name)
		}
		seg.Stripes = append(seg.Stripes, Stripe{PV: name.s, StartPE: pe.i})
	}
	return seg, nil
}

// pv returns the PV of that metadata name, or nil.
func (vg *VG) pv(name string) *PVInfo {
	if vg.pvIndex != nil {
		if i, ok := vg.pvIndex[name]; ok && i < len(vg.PVs) && vg.PVs[i].Name == name {
			return &vg.PVs[i]
		}
	}
	for i := range vg.PVs {
		if vg.PVs[i].Name == name {
			return &vg.PVs[i]
		}
	}
	return nil
}

// PV returns the PV of that metadata name ("pv0") or UUID (dashes
// optional).
func (vg *VG) PV(nameOrUUID string) (*PVInfo, error) {
	if p := vg.pv(nameOrUUID); p != nil {
		return p, nil
	}
	u := normUUID(nameOrUUID)
	for i := range vg.PVs {
		if normUUID(vg.PVs[i].UUID) == u {
			return &vg.PVs[i], nil
		}
	}
	return nil, fmt.Errorf("%w: PV %q in VG %s", ErrNotFound, nameOrUUID, vg.Name)
}

// LV returns the logical volume of that name.
func (vg *VG) LV(name string) (*LV, error) {
	if vg.lvIndex != nil {
		if i, ok := vg.lvIndex[name]; ok && i < len(vg.LVs) && vg.LVs[i].Name == name {
			return &vg.LVs[i], nil
		}
	}
	for i := range vg.LVs {
		if vg.LVs[i].Name == name {
			return &vg.LVs[i], nil
		}
	}
	return nil, fmt.Errorf("%w: LV %q in VG %s", ErrNotFound, name, vg.Name)
}

// checkSupported returns ErrUnsupported naming the first segment type
// this package cannot map.
func (lv *LV) checkSupported() error {
	var bad []string
	for _, s := range lv.Segments {
		if !s.supported() {
			bad = append(bad, s.Type)
		}
	}
	if bad != nil {
		return fmt.Errorf("%w: LV %s has %s segments", ErrUnsupported, lv.Name, strings.Join(bad, ", "))
	}
	return nil
}
