package extent

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// bitmap is the naive model: one bool per byte of a small universe.
type bitmap []bool

const universe = 300

func randomSet(r *rand.Rand) (*Set, bitmap) {
	s, m := &Set{}, make(bitmap, universe)
	for range r.IntN(8) {
		off := r.Int64N(universe)
		n := r.Int64N(universe-off) + 1
		if r.IntN(4) == 0 {
			n = 0 // empty adds must be ignored
		}
		s.Add(off, n)
		for i := off; i < off+n; i++ {
			m[i] = true
		}
	}
	return s, m
}

func (m bitmap) toSet() *Set {
	s := &Set{}
	for i := 0; i < len(m); {
		if !m[i] {
			i++
			continue
		}
		j := i
		for j < len(m) && m[j] {
			j++
		}
		s.ext = append(s.ext, Extent{int64(i), int64(j - i)})
		i = j
	}
	return s
}

func combine(a, b bitmap, f func(x, y bool) bool) bitmap {
	r := make(bitmap, len(a))
	for i := range a {
		r[i] = f(a[i], b[i])
	}
	return r
}

func checkInvariant(t *testing.T, s *Set) {
	t.Helper()
	for i, e := range s.All() {
		require.Positive(t, e.Len, "extent %d of %v is empty", i, s)
		if i > 0 {
			require.Greater(t, e.Off, s.ext[i-1].End(), "extents %d,%d of %v overlap or touch", i-1, i, s)
		}
	}
}

func TestSetMatchesBitmapModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 5000 {
		a, ma := randomSet(r)
		b, mb := randomSet(r)
		checkInvariant(t, a)
		require.Equal(t, ma.toSet().Extents(), a.Extents(), "iteration %d: Add", iter)

		ops := []struct {
			name string
			got  *Set
			want bitmap
		}{
			{"union", a.Union(b), combine(ma, mb, func(x, y bool) bool { return x || y })},
			{"intersect", a.Intersect(b), combine(ma, mb, func(x, y bool) bool { return x && y })},
			{"subtract", a.Subtract(b), combine(ma, mb, func(x, y bool) bool { return x && !y })},
		}
		for _, op := range ops {
			checkInvariant(t, op.got)
			require.Equal(t, op.want.toSet().Extents(), op.got.Extents(), "iteration %d: %s of %v and %v", iter, op.name, a, b)
		}

		grain := int64(r.IntN(40) + 1)
		aligned := a.AlignOut(grain)
		checkInvariant(t, aligned)
		wantAligned := make(bitmap, universe+int(grain))
		for i, set := range ma {
			if set {
				g := int64(i) / grain * grain
				for k := g; k < g+grain; k++ {
					wantAligned[k] = true
				}
			}
		}
		require.Equal(t, wantAligned.toSet().Extents(), aligned.Extents(), "iteration %d: AlignOut(%d) of %v", iter, grain, a)

		off := r.Int64N(universe)
		n := r.Int64N(universe - off + 1)
		var covered, overlaps bool
		for i := off; i < off+n; i++ {
			overlaps = overlaps || ma[i]
		}
		covered = ma[off]
		require.Equal(t, covered, a.Contains(off), "iteration %d: Contains(%d) in %v", iter, off, a)
		require.Equal(t, overlaps, a.Overlaps(off, n), "iteration %d: Overlaps(%d,%d) in %v", iter, off, n, a)

		var bytes int64
		for _, v := range ma {
			if v {
				bytes++
			}
		}
		require.Equal(t, bytes, a.Bytes())
		require.Equal(t, a.Equal(b), ma.toSet().Equal(mb.toSet()))
	}
}

func TestZeroValueAndNil(t *testing.T) {
	var s Set
	require.True(t, s.Empty())
	require.False(t, s.Contains(0))
	var p *Set
	require.Equal(t, 0, p.Len())
	require.Nil(t, p.Extents())
	require.NotNil(t, s.Extents(), "an empty set says nothing, not unknown")
	require.Empty(t, s.Extents())
	require.True(t, p.Union(Of(Extent{1, 2})).Equal(Of(Extent{1, 2})))
}

func TestAscendingAddIsLinear(t *testing.T) {
	s := &Set{}
	for i := range int64(100000) {
		s.Add(i*10, 5)
	}
	require.Equal(t, 100000, s.Len())
	s.Add(0, 1_000_000)
	require.Equal(t, []Extent{{0, 1_000_000}}, s.Extents())
}

func TestAlignOutNegativeOffsets(t *testing.T) {
	require.Equal(t, []Extent{{-8, 16}}, Of(Extent{-3, 5}).AlignOut(8).Extents())
}
