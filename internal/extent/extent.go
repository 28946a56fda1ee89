package extent

import (
	"fmt"
	"iter"
	"sort"
	"strings"
)

// Extent is the half-open byte range [Off, Off+Len).
//
// It is the module's one extent type: aipimage.Extent and vmdk.Range are
// aliases of it, so ranges pass between packages without conversion. It
// has no String method on purpose: those packages' users print it, and
// the default {Off Len} matches the fields they write.
type Extent struct {
	Off, Len int64
}

// End returns the first offset past the extent.
func (e Extent) End() int64 { return e.Off + e.Len }

// Set is a sorted set of non-overlapping, non-adjacent extents. The zero
// value is an empty set ready to use. A Set is not safe for concurrent
// mutation.
type Set struct {
	ext []Extent
}

// Of returns a set holding the union of the given extents, in any order.
func Of(exts ...Extent) *Set {
	s := &Set{}
	for _, e := range exts {
		s.Add(e.Off, e.Len)
	}
	return s
}

// Add inserts [off, off+n). Empty or negative lengths are ignored. Adding in
// ascending order costs amortized O(1); otherwise O(len) in the worst case.
func (s *Set) Add(off, n int64) {
	if n <= 0 {
		return
	}
	end := off + n
	k := len(s.ext)
	if k == 0 || s.ext[k-1].End() < off {
		s.ext = append(s.ext, Extent{off, n})
		return
	}
	if last := &s.ext[k-1]; last.Off <= off {
		if end > last.End() {
			last.Len = end - last.Off
		}
		return
	}
	// First extent that could touch [off,end): its end >= off.
	i := sort.Search(k, func(i int) bool { return s.ext[i].End() >= off })
	// First extent strictly after [off,end): its start > end.
	j := sort.Search(k, func(j int) bool { return s.ext[j].Off > end })
	if i == j {
		s.ext = append(s.ext, Extent{})
		copy(s.ext[i+1:], s.ext[i:])
		s.ext[i] = Extent{off, n}
		return
	}
	lo := min(off, s.ext[i].Off)
	hi := max(end, s.ext[j-1].End())
	s.ext[i] = Extent{lo, hi - lo}
	s.ext = append(s.ext[:i+1], s.ext[j:]...)
}

// Len returns the number of extents.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.ext)
}

// Bytes returns the total length covered.
func (s *Set) Bytes() int64 {
	var t int64
	for _, e := range s.All() {
		t += e.Len
	}
	return t
}

// Empty reports whether the set covers nothing.
func (s *Set) Empty() bool { return s.Len() == 0 }

// At returns the i-th extent in ascending order.
func (s *Set) At(i int) Extent { return s.ext[i] }

// Extents returns a copy of the extents in ascending order. It is nil only
// for a nil *Set: an empty set gives an empty, non-nil slice, because to
// an image writer a nil list of changed ranges means "unknown" and an
// empty one "nothing changed".
func (s *Set) Extents() []Extent {
	if s == nil {
		return nil
	}
	return append(make([]Extent, 0, len(s.ext)), s.ext...)
}

// All iterates the extents in ascending order with their position.
func (s *Set) All() iter.Seq2[int, Extent] {
	return func(yield func(int, Extent) bool) {
		if s == nil {
			return
		}
		for i, e := range s.ext {
			if !yield(i, e) {
				return
			}
		}
	}
}

// Clone returns an independent copy.
func (s *Set) Clone() *Set { return &Set{ext: s.Extents()} }

// Equal reports whether both sets cover the same bytes.
func (s *Set) Equal(o *Set) bool {
	if s.Len() != o.Len() {
		return false
	}
	for i, e := range s.All() {
		if o.ext[i] != e {
			return false
		}
	}
	return true
}

// Contains reports whether off is covered.
func (s *Set) Contains(off int64) bool {
	i := s.search(off)
	return i < s.Len() && s.ext[i].Off <= off
}

// Overlaps reports whether any byte of [off, off+n) is covered.
func (s *Set) Overlaps(off, n int64) bool {
	if n <= 0 {
		return false
	}
	i := s.search(off)
	return i < s.Len() && s.ext[i].Off < off+n
}

// search returns the index of the first extent whose end is past off.
func (s *Set) search(off int64) int {
	if s == nil {
		return 0
	}
	return sort.Search(len(s.ext), func(i int) bool { return s.ext[i].End() > off })
}

// Union returns the bytes covered by s or o.
func (s *Set) Union(o *Set) *Set {
	r := &Set{ext: make([]Extent, 0, s.Len()+o.Len())}
	i, j := 0, 0
	for i < s.Len() || j < o.Len() {
		var e Extent
		if j >= o.Len() || (i < s.Len() && s.ext[i].Off <= o.ext[j].Off) {
			e = s.ext[i]
			i++
		} else {
			e = o.ext[j]
			j++
		}
		r.Add(e.Off, e.Len) // ascending starts: amortized O(1)
	}
	return r
}

// Intersect returns the bytes covered by both s and o.
func (s *Set) Intersect(o *Set) *Set {
	r := &Set{}
	i, j := 0, 0
	for i < s.Len() && j < o.Len() {
		a, b := s.ext[i], o.ext[j]
		lo, hi := max(a.Off, b.Off), min(a.End(), b.End())
		if lo < hi {
			r.ext = append(r.ext, Extent{lo, hi - lo})
		}
		if a.End() < b.End() {
			i++
		} else {
			j++
		}
	}
	return r
}

// Subtract returns the bytes covered by s and not by o.
func (s *Set) Subtract(o *Set) *Set {
	r := &Set{}
	j := 0
	for _, a := range s.All() {
		cur := a.Off
		for j < o.Len() && o.ext[j].End() <= cur {
			j++
		}
		for k := j; k < o.Len() && o.ext[k].Off < a.End(); k++ {
			b := o.ext[k]
			if b.Off > cur {
				r.ext = append(r.ext, Extent{cur, b.Off - cur})
			}
			cur = max(cur, b.End())
		}
		if cur < a.End() {
			r.ext = append(r.ext, Extent{cur, a.End() - cur})
		}
	}
	return r
}

// AlignOut returns the smallest set of whole grains covering s: every extent
// is widened to grain boundaries. grain must be positive.
func (s *Set) AlignOut(grain int64) *Set {
	if grain <= 0 {
		panic("extent: AlignOut with non-positive grain")
	}
	r := &Set{}
	for _, e := range s.All() {
		lo := floorDiv(e.Off, grain) * grain
		hi := -floorDiv(-e.End(), grain) * grain
		r.Add(lo, hi-lo)
	}
	return r
}

// Clip returns the part of s inside [off, off+n).
func (s *Set) Clip(off, n int64) *Set {
	return s.Intersect(Of(Extent{off, n}))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// String lists the extents as half-open intervals: "[[0,512) [4096,8192)]".
func (s *Set) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range s.All() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "[%d,%d)", e.Off, e.End())
	}
	b.WriteByte(']')
	return b.String()
}
