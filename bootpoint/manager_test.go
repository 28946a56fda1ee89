package bootpoint_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
	"github.com/standbykit/standbykit/internal/sample"
)

func TestManagerPerHostLimit(t *testing.T) {
	hosts := map[string]*hypervisortest.Memory{"esx1": {}, "esx2": {}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), PerHost: 2, Global: 10}
	for i := range 6 {
		host := []string{"esx1", "esx2"}[i%2]
		hv := hosts[host]
		hv.Slow = 30 * time.Millisecond
		m.Tasks = append(m.Tasks, &bootpoint.Task{
			Name: fmt.Sprintf("t%d", i), Images: sampleDir(t, 2, uint64(i)), Host: host,
			Trigger: bootpoint.Trigger{Kind: bootpoint.EveryN, N: 1},
			Standby: &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: fmt.Sprintf("vm%d", i)}},
		})
	}
	ctx := context.Background()
	tick := func() {
		res, err := m.Tick(ctx)
		require.NoError(t, err)
		for _, r := range res {
			require.NoError(t, r.Err, r.Task)
			require.True(t, r.Ran, r.Task)
		}
	}
	tick() // creates every VM from its newest point
	for _, task := range m.Tasks {
		_, err := sample.Extend(ctx, task.Images, 2, 9, nil)
		require.NoError(t, err)
	}
	tick() // one boot point covering both new points
	for name, hv := range hosts {
		require.LessOrEqual(t, hv.MaxInFlight(), 2, "host %s", name)
		require.Equal(t, 2, hv.MaxInFlight(), "host %s: the limit should also be reached", name)
	}
	st, err := m.Status()
	require.NoError(t, err)
	for _, task := range m.Tasks {
		s := st[task.Name]
		require.Equal(t, 4, s.LastSequence, task.Name)
		require.Zero(t, s.Waiting, task.Name)
		require.Empty(t, s.LastError, task.Name)
		require.Equal(t, 2, s.BootPoints, task.Name)
		require.NoError(t, err)
		require.Len(t, verifyAllOf(t, task), 2)
	}
	// The state survives a restart, and reconciliation agrees with it.
	again := &bootpoint.Manager{StatePath: m.StatePath, Tasks: m.Tasks}
	res, err := again.Tick(ctx)
	require.NoError(t, err)
	for _, r := range res {
		require.False(t, r.Ran, "nothing new for %s", r.Task)
	}
}

func TestManagerTriggersWithInjectedClock(t *testing.T) {
	now := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
	ctx := context.Background()
	newTask := func(name string, tr bootpoint.Trigger) *bootpoint.Task {
		return &bootpoint.Task{Name: name, Images: sampleDir(t, 1, 1), Trigger: tr,
			Standby: &bootpoint.Standby{Hypervisor: &hypervisortest.Memory{}, VM: bootpoint.VMSpec{Name: name}}}
	}
	daily := newTask("daily", bootpoint.Trigger{Kind: bootpoint.Daily, At: 3 * time.Hour, Location: time.UTC})
	every := newTask("every3", bootpoint.Trigger{Kind: bootpoint.EveryN, N: 3})
	immediate := newTask("now", bootpoint.Trigger{Kind: bootpoint.Immediately})
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "s.json"), Tasks: []*bootpoint.Task{daily, every, immediate}, Now: func() time.Time { return now }}
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
	extend := func(task *bootpoint.Task, n int) {
		_, err := sample.Extend(ctx, task.Images, n, uint64(now.Unix()), nil)
		require.NoError(t, err)
	}

	// 01:00, two points each and nothing made yet: the daily task missed
	// yesterday's slot and catches up now; every:3 waits for a third point.
	require.Equal(t, map[string]bool{"daily": true, "every3": false, "now": true}, ran())

	extend(daily, 1)
	extend(every, 1)
	extend(immediate, 1)
	now = now.Add(time.Hour) // 02:00
	require.Equal(t, map[string]bool{"daily": false, "every3": true, "now": true}, ran())

	now = now.Add(time.Hour) // 03:00: the daily slot
	require.Equal(t, map[string]bool{"daily": true, "every3": false, "now": false}, ran())
	now = now.Add(time.Hour) // 04:00: already ran today
	extend(daily, 2)
	require.Equal(t, map[string]bool{"daily": false, "every3": false, "now": false}, ran())
	now = now.Add(23 * time.Hour) // next day 03:00: one boot point for both
	require.Equal(t, map[string]bool{"daily": true, "every3": false, "now": false}, ran())

	st, err := m.Status()
	require.NoError(t, err)
	require.Equal(t, 4, st["daily"].LastSequence)
	require.Equal(t, 3, st["daily"].BootPoints)
	require.Equal(t, 2, st["every3"].LastSequence)
	for _, task := range m.Tasks {
		verifyAllOf(t, task)
	}

	// Paused tasks do not run, RunNow runs them anyway.
	require.NoError(t, m.SetPaused("now", true))
	extend(immediate, 1)
	require.False(t, ran()["now"])
	r, err := m.RunNow(ctx, "now")
	require.NoError(t, err)
	require.True(t, r.Ran)
}

// A task whose VM was used (its disks diverged from the current boot
// point) stops making boot points until an operator discards the changes
// or keeps the VM as failed over.
func TestManagerDivergedTask(t *testing.T) {
	ctx := context.Background()
	hv := &hypervisortest.Memory{}
	task := &bootpoint.Task{Name: "web", Images: sampleDir(t, 1, 3), Trigger: bootpoint.Trigger{Kind: bootpoint.EveryN, N: 1},
		Standby: &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: "web-standby"}}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: []*bootpoint.Task{task}}
	require.NoError(t, tickOne(t, m).Err)

	require.NoError(t, hv.WriteDisk("web-standby", 0, 4096, make([]byte, 512)))
	_, err := sample.Extend(ctx, task.Images, 1, 11, nil)
	require.NoError(t, err)
	r := tickOne(t, m)
	require.ErrorIs(t, r.Err, bootpoint.ErrDiverged)
	require.True(t, taskState(t, m, "web").Diverged)
	require.False(t, tickOne(t, m).Ran, "a diverged task waits for an operator")

	require.NoError(t, m.Discard(ctx, "web"))
	require.False(t, taskState(t, m, "web").Diverged)
	r = tickOne(t, m)
	require.NoError(t, r.Err)
	require.True(t, r.Ran)
	require.Len(t, verifyAllOf(t, task), 2)

	require.NoError(t, m.KeepFailedOver("web"))
	_, err = sample.Extend(ctx, task.Images, 1, 12, nil)
	require.NoError(t, err)
	r = tickOne(t, m)
	require.False(t, r.Ran, "a failed-over task makes no boot point")
	require.True(t, taskState(t, m, "web").FailedOver)
	_, err = m.RunNow(ctx, "web")
	require.NoError(t, err)
	require.Len(t, verifyAllOf(t, task), 2, "not even when forced")
}
