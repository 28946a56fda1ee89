package bootpoint

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/p2v"
)

// memSet is an in-memory aipimage.Set: it also shows that another image
// format can plug in through the two interfaces.
type memSet struct {
	points []*memPoint
}

type memPoint struct {
	info    aipimage.PointInfo
	disk    []byte
	changed []aipimage.Extent
}

func (s *memSet) Points() []aipimage.PointInfo {
	var out []aipimage.PointInfo
	for _, p := range s.points {
		out = append(out, p.info)
	}
	return out
}
func (s *memSet) Point(k int) (aipimage.Point, error)      { return s.points[k], nil }
func (p *memPoint) Info() aipimage.PointInfo               { return p.info }
func (p *memPoint) Changed(int) ([]aipimage.Extent, error) { return p.changed, nil }
func (p *memPoint) Disk(int) (*io.SectionReader, error) {
	return io.NewSectionReader(bytes.NewReader(p.disk), 0, int64(len(p.disk))), nil
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randomPlan derives the next plan from prev: patches survive, move,
// change content, vanish, and new ones appear, never overlapping.
func randomPlan(r *rand.Rand, prev *p2v.Plan, size int64) *p2v.Plan {
	var candidates []p2v.Patch
	for _, p := range prev.Patches {
		switch r.IntN(4) {
		case 0: // vanishes
		case 1: // moves
			p.Offset = r.Int64N(size - int64(len(p.Data)))
			candidates = append(candidates, p)
		case 2: // same place, new content
			candidates = append(candidates, p2v.Patch{Offset: p.Offset, Data: randomBytes(r, len(p.Data))})
		default:
			candidates = append(candidates, p)
		}
	}
	for range r.IntN(4) {
		n := 1 + r.IntN(3000)
		candidates = append(candidates, p2v.Patch{Offset: r.Int64N(size - int64(n)), Data: randomBytes(r, n)})
	}
	plan := &p2v.Plan{}
	for _, c := range candidates {
		overlaps := false
		for _, p := range plan.Patches {
			if c.Offset < p.End() && p.Offset < c.End() {
				overlaps = true
			}
		}
		if !overlaps {
			plan.Patches = append(plan.Patches, c)
		}
	}
	return plan
}

func applied(disk []byte, plan *p2v.Plan) []byte {
	out := bytes.Clone(disk)
	for _, p := range plan.Patches {
		copy(out[p.Offset:], p.Data)
	}
	return out
}

func applyDelta(t *testing.T, vm []byte, d Delta, grain int64) {
	for i, e := range d.Extents {
		require.Zero(t, e.Off%grain, "extent %d not grain-aligned", i)
		require.True(t, e.End()%grain == 0 || e.End() == d.Size)
		n, err := d.Source.ReadAt(vm[e.Off:e.End()], e.Off)
		require.Equal(t, int(e.Len), n, "%v", err)
	}
}

// simulate builds a chain of points with random changes and plans, makes
// boot points (every point, or catching up over several), and checks the
// invariant at every boot point. With withPrev false it "forgets"
// patched(k-1) and reports whether the invariant broke anywhere.
func simulate(t *testing.T, seed uint64, grain int64, withPrev bool) (broken bool) {
	r := rand.New(rand.NewPCG(seed, 3))
	size := int64(1<<20 + 512*3)
	disk := randomBytes(r, int(size))
	set := &memSet{}
	info := aipimage.PointInfo{Disks: []aipimage.DiskInfo{{Size: size, SectorSize: 512}}, BlockSize: 65536}
	set.points = append(set.points, &memPoint{info: info, disk: bytes.Clone(disk), changed: []aipimage.Extent{{Off: 0, Len: size}}})
	plans := []*p2v.Plan{randomPlan(r, &p2v.Plan{}, size)}
	for k := 1; k <= 25; k++ {
		var changed []aipimage.Extent
		for range r.IntN(5) {
			off := r.Int64N(size - 70000)
			n := 1 + r.Int64N(70000)
			copy(disk[off:], randomBytes(r, int(n)))
			changed = append(changed, aipimage.Extent{Off: off, Len: n})
		}
		info.Sequence = k
		set.points = append(set.points, &memPoint{info: info, disk: bytes.Clone(disk), changed: changed})
		plans = append(plans, randomPlan(r, plans[k-1], size))
	}

	// Boot point 0: the base holds the whole overlaid disk.
	base, err := PlanDelta(set.points[0], 0, set.points[0].changed, nil, plans[0], grain)
	require.NoError(t, err)
	vm := make([]byte, size)
	applyDelta(t, vm, base, grain)
	require.Equal(t, applied(set.points[0].disk, plans[0]), vm)

	last := 0
	for k := 1; k < len(set.points); k++ {
		if r.IntN(3) == 0 && k < len(set.points)-1 {
			continue // catch up later: one boot point covers several increments
		}
		changed, err := ChangedSince(set, last, k, 0)
		require.NoError(t, err)
		prev := plans[last]
		if !withPrev {
			prev = nil
		}
		d, err := PlanDelta(set.points[k], 0, changed, prev, plans[k], grain)
		require.NoError(t, err)
		applyDelta(t, vm, d, grain)
		want := applied(set.points[k].disk, plans[k])
		if !bytes.Equal(want, vm) {
			if withPrev {
				t.Fatalf("seed %d grain %d: boot point over point %d differs from point ⊕ patches", seed, grain, k)
			}
			return true
		}
		last = k
	}
	return false
}

func TestDeltaInvariantModel(t *testing.T) {
	for _, grain := range []int64{512, 64 << 10} {
		for seed := range uint64(30) {
			t.Run(fmt.Sprintf("grain=%d/seed=%d", grain, seed), func(t *testing.T) {
				simulate(t, seed, grain, true)
			})
		}
	}
}

// TestModelDetectsForgottenPatches shows the model test can fail: without
// patched(k-1), a patch that moved or vanished stays on the VM disk.
func TestModelDetectsForgottenPatches(t *testing.T) {
	broken := 0
	for seed := range uint64(30) {
		if simulate(t, seed, 512, false) {
			broken++
		}
	}
	require.Greater(t, broken, 20, "dropping patched(k-1) must break the invariant in most runs")
}

func TestPlanDeltaBadInput(t *testing.T) {
	p := &memPoint{info: aipimage.PointInfo{Disks: []aipimage.DiskInfo{{Size: 4096, SectorSize: 512}}}, disk: make([]byte, 4096)}
	_, err := PlanDelta(p, 1, nil, nil, nil, 512)
	require.Error(t, err)
	_, err = PlanDelta(p, 0, nil, nil, &p2v.Plan{Patches: []p2v.Patch{{Offset: 4090, Data: make([]byte, 10)}}}, 512)
	require.ErrorContains(t, err, "beyond disk")
	_, err = PlanDelta(p, 0, nil, nil, nil, 0)
	require.Error(t, err)
}
