package ntfs

import (
	"fmt"
	"sort"
)

// maxVCN bounds VCNs so that byte offsets (VCN × cluster size) fit an int64.
const maxVCN = 1 << 40

// run maps length clusters starting at vcn to lcn; lcn < 0 is sparse.
type run struct {
	vcn, lcn, length int64
}

// decodeRuns decodes a mapping pairs array (data runs) of an attribute
// extent covering VCNs low..high. Each pair is a header byte (low nibble:
// size of the length, high nibble: size of the LCN delta), an unsigned
// length and a signed LCN delta relative to the previous run's LCN; a
// delta of size 0 is a sparse run and a zero header ends the array.
func decodeRuns(b []byte, low, high int64) ([]run, error) {
	var runs []run
	vcn, lcn := low, int64(0)
	for i := 0; ; {
		if i >= len(b) {
			// Tolerate a missing terminator at the attribute's end.
			break
		}
		h := b[i]
		i++
		if h == 0 {
			break
		}
		ls, os := int(h&0x0F), int(h>>4)
		if ls == 0 || ls > 8 || os > 8 || i+ls+os > len(b) {
			return nil, corruptf("data run header 0x%02x at %d", h, i-1)
		}
		var length uint64
		for k := ls - 1; k >= 0; k-- {
			length = length<<8 | uint64(b[i+k])
		}
		i += ls
		if length == 0 || length > 1<<48 {
			return nil, corruptf("data run of %d clusters", length)
		}
		r := run{vcn: vcn, length: int64(length), lcn: -1}
		if os > 0 {
			var d uint64
			for k := os - 1; k >= 0; k-- {
				d = d<<8 | uint64(b[i+k])
			}
			// Sign-extend.
			shift := uint(64 - 8*os)
			delta := int64(d<<shift) >> shift
			i += os
			lcn += delta
			if lcn < 0 || lcn > 1<<48 {
				return nil, corruptf("data run at cluster %d", lcn)
			}
			r.lcn = lcn
		}
		runs = append(runs, r)
		vcn += int64(length)
		if vcn > maxVCN || vcn > high+1 {
			return nil, corruptf("data runs reach VCN %d past the extent's last VCN %d", vcn-1, high)
		}
	}
	if high >= low && vcn != high+1 {
		return nil, corruptf("data runs end at VCN %d, extent ends at %d", vcn-1, high)
	}
	return runs, nil
}

// stream is the contents of one attribute, resident or non-resident
// (possibly in several extents).
type stream struct {
	v        *Volume
	flags    uint16
	resident []byte // nil when non-resident
	valueOff int    // resident: value offset within its record
	record   uint64 // record holding the resident value / first extent
	runs     []run
	size     int64 // data size
	initSize int64
	alloc    int64
}

// errNoAttr is returned by newStream when the file has no such attribute.
var errNoAttr = fmt.Errorf("%w: no such attribute", ErrNotFound)

// newStream assembles the attribute (typ, name) from attrs.
func (v *Volume) newStream(attrs []*attr, typ uint32, name string) (*stream, error) {
	return v.assemble(attrs, typ, name, false)
}

// assemble is newStream; with partial, extents may be missing past the
// first ones and the stream is cut to what is mapped (to bootstrap the
// $MFT, whose later extents are in records it maps itself).
func (v *Volume) assemble(attrs []*attr, typ uint32, name string, partial bool) (*stream, error) {
	var ext []*attr
	for _, a := range attrs {
		if a.typ == typ && a.name == name {
			ext = append(ext, a)
		}
	}
	if len(ext) == 0 {
		return nil, errNoAttr
	}
	s := &stream{v: v, flags: ext[0].flags, record: ext[0].record}
	if !ext[0].nonResident {
		if len(ext) != 1 {
			return nil, corruptf("attribute 0x%x is resident but has %d instances", typ, len(ext))
		}
		s.resident = ext[0].value
		if s.resident == nil {
			s.resident = []byte{}
		}
		s.valueOff = ext[0].valueOff
		s.size = int64(len(s.resident))
		s.initSize, s.alloc = s.size, s.size
		return s, nil
	}
	sort.SliceStable(ext, func(i, j int) bool { return ext[i].lowVCN < ext[j].lowVCN })
	if ext[0].lowVCN != 0 {
		return nil, corruptf("attribute 0x%x has no extent at VCN 0", typ)
	}
	first := ext[0]
	s.flags = first.flags
	s.size, s.initSize, s.alloc = first.dataSize, first.initSize, first.allocSize
	next := int64(0)
	for _, e := range ext {
		if !e.nonResident {
			return nil, corruptf("attribute 0x%x mixes resident and non-resident extents", typ)
		}
		if e.lowVCN != next {
			return nil, corruptf("attribute 0x%x extent at VCN %d, expected %d", typ, e.lowVCN, next)
		}
		s.runs = append(s.runs, e.runs...)
		if len(e.runs) > 0 {
			last := e.runs[len(e.runs)-1]
			next = last.vcn + last.length
		}
	}
	cs := v.clusterSize
	if partial && s.alloc > next*cs {
		s.alloc = next * cs
		s.size = min(s.size, s.alloc)
		s.initSize = min(s.initSize, s.alloc)
	}
	if s.alloc > next*cs {
		// Allocated clusters must all be mapped (compressed attributes
		// are refused before this matters).
		if s.flags&attrCompressedMask == 0 {
			return nil, corruptf("attribute 0x%x allocates %d bytes but maps %d clusters", typ, s.alloc, next)
		}
	}
	for _, r := range s.runs {
		if r.lcn >= 0 && (r.lcn >= v.totalClusters || r.length > v.totalClusters-r.lcn) {
			return nil, corruptf("data run at clusters %d+%d beyond the volume (%d clusters)",
				r.lcn, r.length, v.totalClusters)
		}
	}
	return s, nil
}

// checkReadable refuses data this package cannot interpret.
func (s *stream) checkReadable() error {
	if s.flags&attrEncrypted != 0 {
		return unsupportedf("encrypted data")
	}
	if s.resident == nil && s.flags&attrCompressedMask != 0 {
		return unsupportedf("compressed data")
	}
	return nil
}

// find returns the index of the run holding vcn, or -1.
func (s *stream) find(vcn int64) int {
	i := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].vcn+s.runs[i].length > vcn })
	if i < len(s.runs) && s.runs[i].vcn <= vcn {
		return i
	}
	return -1
}

// readAt fills p with the stream's bytes at off: zeros past the initialized
// size and in sparse runs. Reading past the data size is an error.
func (s *stream) readAt(p []byte, off int64) error {
	if err := s.checkReadable(); err != nil {
		return err
	}
	if off < 0 || off > s.size || int64(len(p)) > s.size-off {
		return corruptf("read of %d bytes at %d past the attribute's %d bytes", len(p), off, s.size)
	}
	if s.resident != nil {
		copy(p, s.resident[off:])
		return nil
	}
	cs := s.v.clusterSize
	for len(p) > 0 {
		if off >= s.initSize {
			clear(p)
			return nil
		}
		n := int64(len(p))
		if n > s.initSize-off {
			n = s.initSize - off
		}
		vcn := off / cs
		i := s.find(vcn)
		if i < 0 {
			return corruptf("VCN %d is not mapped", vcn)
		}
		r := s.runs[i]
		within := off - r.vcn*cs
		if avail := r.length*cs - within; n > avail {
			n = avail
		}
		if r.lcn < 0 {
			clear(p[:n])
		} else if err := s.v.readRaw(p[:n], r.lcn*cs+within); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// physical returns the physical ranges of stream bytes [off, off+n),
// merging adjacent runs. Sparse runs are an error.
func (s *stream) physical(off, n int64) ([]Range, error) {
	var out []Range
	cs := s.v.clusterSize
	for n > 0 {
		vcn := off / cs
		i := s.find(vcn)
		if i < 0 {
			return nil, corruptf("VCN %d is not mapped", vcn)
		}
		r := s.runs[i]
		if r.lcn < 0 {
			return nil, unsupportedf("sparse data has no physical location")
		}
		within := off - r.vcn*cs
		m := r.length*cs - within
		if m > n {
			m = n
		}
		po := r.lcn*cs + within
		if k := len(out) - 1; k >= 0 && out[k].Offset+out[k].Length == po {
			out[k].Length += m
		} else {
			out = append(out, Range{Offset: po, Length: m})
		}
		off, n = off+m, n-m
	}
	return out, nil
}
