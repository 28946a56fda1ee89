package esx_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/standbykit/standbykit/internal/sample"
)

func sampleSet(t *testing.T, incrementals int, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	_, err := sample.Write(context.Background(), dir, sample.Options{DiskSize: 2 << 20, Incrementals: incrementals, Seed: seed})
	require.NoError(t, err)
	return dir
}

func openSet(t *testing.T, dir string) aipimage.Set {
	t.Helper()
	set, err := aipimage.OpenDir(dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { set.Close() })
	return set
}

// verifyTask checks every boot point of a task against its image set.
func verifyTask(t *testing.T, task *bootpoint.Task) []bootpoint.BootPoint {
	t.Helper()
	set := openSet(t, task.Images)
	_, bps, err := task.Standby.BootPoints(context.Background())
	require.NoError(t, err)
	for _, bp := range bps {
		require.NoError(t, task.Standby.Verify(context.Background(), set, bp), "task %s boot point %d", task.Name, bp.Meta.Sequence)
	}
	return bps
}

// checkedRemoval checks, after every snapshot removal, that the
// datastore holds no disk file that no chain uses.
type checkedRemoval struct {
	*esx.Host
	t   *testing.T
	sim *esxsim.Simulator
	n   int
}

func (c *checkedRemoval) RemoveSnapshot(ctx context.Context, vm bootpoint.VM, s bootpoint.Snapshot) error {
	if err := c.Host.RemoveSnapshot(ctx, vm, s); err != nil {
		return err
	}
	c.n++
	unused, err := c.sim.UnusedDiskFiles()
	require.NoError(c.t, err)
	require.Empty(c.t, unused, "after removing %s", s.Name)
	return nil
}

// A full image and 34 incrementals with the cap at 30: exactly 30 boot
// points remain, the oldest were consolidated by the (simulated) host,
// every one left still equals its point ⊕ patches, by our reader and by
// qemu-img on the datastore files, and no consolidation left a stray file.
func TestCapOf30OnSimulator(t *testing.T) {
	qemu := oracle.Require(t, "qemu-img")
	ctx := context.Background()
	sim, host := connectSim(t)
	images := t.TempDir()
	src, err := sample.Write(ctx, images, sample.Options{DiskSize: 2 << 20, Incrementals: 34, Seed: 5, KeepContent: true})
	require.NoError(t, err)
	set := openSet(t, images)
	hv := &checkedRemoval{Host: host, t: t, sim: sim}
	sb := &bootpoint.Standby{Hypervisor: hv, Inspector: shiftingPatches{}, VM: bootpoint.VMSpec{Name: "cap"}}
	results, err := sb.Sync(ctx, set)
	require.NoError(t, err)
	require.Len(t, results, 35)
	require.Equal(t, 5, hv.n)
	vm, bps, err := sb.BootPoints(ctx)
	require.NoError(t, err)
	require.Len(t, bps, 30)
	for i, bp := range bps {
		require.Equal(t, 5+i, bp.Meta.Sequence, "the 5 oldest are gone, the rest in order")
		require.NoError(t, sb.Verify(ctx, set, bp))
		files, err := host.ChainFiles(ctx, vm, bp.Snapshot, 0)
		require.NoError(t, err)
		require.Len(t, files, i+1, "consolidation folded the oldest deltas into the base")
		got := qemuRead(t, qemu, localFile(t, sim, files[0]))
		require.True(t, bytes.Equal(wantDisk(t, set, src, shiftingPatches{}, bp.Meta.Sequence), got), "boot point %d by qemu-img", bp.Meta.Sequence)
	}
	snaps, err := host.Snapshots(ctx, vm)
	require.NoError(t, err)
	require.Len(t, snaps, 30)
}

// countingHost measures how many boot points are being made at once on
// one host.
type countingHost struct {
	*esx.Host
	inFlight, max *atomic.Int32
	hold          time.Duration
}

func (c countingHost) enter() func() {
	n := c.inFlight.Add(1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(c.hold)
	return func() { c.inFlight.Add(-1) }
}

func (c countingHost) CreateStandby(ctx context.Context, spec bootpoint.VMSpec, bases []bootpoint.Delta) (bootpoint.VM, error) {
	defer c.enter()()
	return c.Host.CreateStandby(ctx, spec, bases)
}

func (c countingHost) AddBootPoint(ctx context.Context, vm bootpoint.VM, deltas []bootpoint.Delta, name, desc string) (bootpoint.Snapshot, error) {
	if len(deltas) == 0 { // the first snapshot, right after CreateStandby
		return c.Host.AddBootPoint(ctx, vm, deltas, name, desc)
	}
	defer c.enter()()
	return c.Host.AddBootPoint(ctx, vm, deltas, name, desc)
}

// Six tasks on two hosts with a per-host limit of 2: never more than two
// at once on a host (measured), and all complete.
func TestManagerPerHostLimitOnSimulator(t *testing.T) {
	ctx := context.Background()
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), PerHost: 2, Global: 4}
	var maxima []*atomic.Int32
	for h, hostName := range []string{"esx-a", "esx-b"} {
		_, host := connectSim(t)
		counter := countingHost{Host: host, inFlight: new(atomic.Int32), max: new(atomic.Int32), hold: 150 * time.Millisecond}
		maxima = append(maxima, counter.max)
		for i := range 3 {
			name := hostName + "-task" + string(rune('0'+i))
			m.Tasks = append(m.Tasks, &bootpoint.Task{Name: name, Host: hostName, Images: sampleSet(t, 2, uint64(10*h+i)),
				Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
				Standby: &bootpoint.Standby{Hypervisor: counter, VM: bootpoint.VMSpec{Name: name}}})
		}
	}
	tick := func() {
		res, err := m.Tick(ctx)
		require.NoError(t, err)
		require.Len(t, res, 6)
		for _, r := range res {
			require.NoError(t, r.Err, r.Task)
			require.True(t, r.Ran, r.Task)
		}
	}
	tick() // creates six VMs from their newest points
	var wg sync.WaitGroup
	for _, task := range m.Tasks {
		wg.Go(func() {
			_, err := sample.Extend(ctx, task.Images, 1, 99, nil)
			require.NoError(t, err)
		})
	}
	wg.Wait()
	tick() // one delta boot point each
	for h, max := range maxima {
		require.Equal(t, int32(2), max.Load(), "host %d: the limit must be reached and never passed", h)
	}
	st, err := m.Status()
	require.NoError(t, err)
	for _, task := range m.Tasks {
		bps := verifyTask(t, task)
		require.Len(t, bps, 2)
		require.Equal(t, 3, st[task.Name].LastSequence)
		require.Empty(t, st[task.Name].LastError)
	}
}

// The three triggers on the simulator, with an injected clock.
func TestTriggersOnSimulator(t *testing.T) {
	ctx := context.Background()
	_, host := connectSim(t)
	now := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
	task := func(name string, tr bootpoint.Trigger) *bootpoint.Task {
		return &bootpoint.Task{Name: name, Images: sampleSet(t, 1, 7), Trigger: tr,
			Standby: &bootpoint.Standby{Hypervisor: host, VM: bootpoint.VMSpec{Name: name}}}
	}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "s.json"), Now: func() time.Time { return now },
		Tasks: []*bootpoint.Task{
			task("daily", bootpoint.Trigger{Kind: bootpoint.Daily, At: 3 * time.Hour, Location: time.UTC}),
			task("every2", bootpoint.Trigger{Kind: bootpoint.EveryN, N: 2}),
			task("now", bootpoint.Trigger{Kind: bootpoint.Immediately}),
		}}
	ran := func() map[string]bool {
		res, err := m.Tick(ctx)
		require.NoError(t, err)
		out := map[string]bool{}
		for _, r := range res {
			require.NoError(t, r.Err, r.Task)
			out[r.Task] = r.Ran
		}
		return out
	}
	extendAll := func() {
		for _, tk := range m.Tasks {
			_, err := sample.Extend(ctx, tk.Images, 1, uint64(now.Unix()), nil)
			require.NoError(t, err)
		}
	}
	// 01:00, two points: daily catches up on the missed slot, every:2 has
	// its two, immediately runs.
	require.Equal(t, map[string]bool{"daily": true, "every2": true, "now": true}, ran())
	extendAll()
	now = now.Add(time.Hour) // 02:00: one new point each
	require.Equal(t, map[string]bool{"daily": false, "every2": false, "now": true}, ran())
	extendAll()
	now = now.Add(time.Hour) // 03:00: the daily slot; every:2 has two waiting
	require.Equal(t, map[string]bool{"daily": true, "every2": true, "now": true}, ran())
	now = now.Add(time.Hour)
	require.Equal(t, map[string]bool{"daily": false, "every2": false, "now": false}, ran())
	for _, tk := range m.Tasks {
		verifyTask(t, tk)
	}
}
