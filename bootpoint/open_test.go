package bootpoint_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
)

// foreignSet is an image set of another product's format, held in memory:
// it implements aipimage.Set and Point and nothing of the aipimage
// encoding, plus Close and Pending for the manager.
type foreignSet struct {
	mu      sync.Mutex
	points  []*foreignPoint
	pending []aipimage.Pending
	opened  int
	closed  int
}

type foreignPoint struct {
	info    aipimage.PointInfo
	disk    []byte
	changed []aipimage.Extent
}

var (
	_ bootpoint.ManagedSet    = (*foreignSet)(nil)
	_ bootpoint.PendingLister = (*foreignSet)(nil)
)

func (s *foreignSet) Points() []aipimage.PointInfo {
	var out []aipimage.PointInfo
	for _, p := range s.points {
		out = append(out, p.info)
	}
	return out
}
func (s *foreignSet) Point(k int) (aipimage.Point, error) {
	if k < 0 || k >= len(s.points) {
		return nil, errors.New("no such point")
	}
	return s.points[k], nil
}
func (s *foreignSet) Pending() []aipimage.Pending { return s.pending }
func (s *foreignSet) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed++
	return nil
}

func (p *foreignPoint) Info() aipimage.PointInfo               { return p.info }
func (p *foreignPoint) Changed(int) ([]aipimage.Extent, error) { return p.changed, nil }
func (p *foreignPoint) Disk(int) (*io.SectionReader, error) {
	return io.NewSectionReader(bytes.NewReader(p.disk), 0, int64(len(p.disk))), nil
}

// add appends a point whose disk has a few changed ranges (the first point:
// random data in the first half).
func (s *foreignSet) add(r *rand.Rand) {
	const size = 2 << 20
	k := len(s.points)
	info := aipimage.PointInfo{SetID: "crm-set-1", PointID: "crm-point-" + string(rune('a'+k)), Sequence: k,
		Time:    time.Date(2026, 11, 1+k, 3, 0, 0, 0, time.UTC),
		Machine: aipimage.Machine{Hostname: "db01"}, Disks: []aipimage.DiskInfo{{Size: size, SectorSize: 512}}, BlockSize: 4096}
	if k == 0 {
		disk := make([]byte, size)
		for i := range size / 2 {
			disk[i] = byte(r.Uint32())
		}
		s.points = append(s.points, &foreignPoint{info: info, disk: disk, changed: []aipimage.Extent{{Off: 0, Len: size / 2}}})
		return
	}
	info.ParentID = s.points[k-1].info.PointID
	disk := bytes.Clone(s.points[k-1].disk)
	var changed []aipimage.Extent
	for range 3 {
		off, n := r.Int64N(size-9000), 1+r.Int64N(9000)
		for i := off; i < off+n; i++ {
			disk[i] = byte(r.Uint32())
		}
		changed = append(changed, aipimage.Extent{Off: off, Len: n})
	}
	s.points = append(s.points, &foreignPoint{info: info, disk: disk, changed: changed})
}

// TestManagerOpensForeignSets runs the manager over image sets it opens
// through Manager.Open: no aipimage file is involved, and every boot point
// verifies against the foreign set.
func TestManagerOpensForeignSets(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	store := map[string]*foreignSet{"crm://db01": {}}
	set := store["crm://db01"]
	set.add(r)
	set.add(r)
	set.pending = []aipimage.Pending{{File: "crm://db01/point-c", Reason: aipimage.ErrIncomplete}}

	hv := &hypervisortest.Memory{}
	task := &bootpoint.Task{Name: "db01", Images: "crm://db01", Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
		Standby: &bootpoint.Standby{Hypervisor: hv, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "db01-standby"}}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: []*bootpoint.Task{task},
		Open: func(ctx context.Context, t *bootpoint.Task) (bootpoint.ManagedSet, error) {
			s, ok := store[t.Images]
			if !ok {
				return nil, errors.New("crm: no set " + t.Images)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.opened++
			return s, nil
		}}
	ctx := context.Background()
	tick := func() {
		t.Helper()
		res, err := m.Tick(ctx)
		require.NoError(t, err)
		require.Len(t, res, 1)
		require.NoError(t, res[0].Err)
		require.True(t, res[0].Ran)
	}

	tick() // the VM, from the newest point
	st, err := m.Status()
	require.NoError(t, err)
	require.Equal(t, 1, st["db01"].LastSequence)
	require.Equal(t, 1, st["db01"].Pending, "the set's PendingLister is counted")
	require.Len(t, verifyAll(t, task.Standby, set), 1)

	set.add(r) // the pending point arrives, and another
	set.add(r)
	set.pending = nil
	tick() // one boot point covering both
	st, err = m.Status()
	require.NoError(t, err)
	require.Equal(t, 3, st["db01"].LastSequence)
	require.Zero(t, st["db01"].Pending)
	require.Zero(t, st["db01"].Waiting)
	require.Empty(t, st["db01"].LastError)
	require.Len(t, verifyAll(t, task.Standby, set), 2)
	require.Equal(t, set.opened, set.closed, "every set opened is closed")
	require.Equal(t, 2, set.opened)

	// An opener's failure is the task's, recorded in its state.
	task.Images = "crm://gone"
	res, err := m.Tick(ctx)
	require.NoError(t, err)
	require.ErrorContains(t, res[0].Err, "crm: no set crm://gone")
	st, err = m.Status()
	require.NoError(t, err)
	require.Contains(t, st["db01"].LastError, "crm: no set")
}
