package bootpoint_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
	"github.com/standbykit/standbykit/internal/sample"
)

// A daily task whose run fails is tried again at the next passes, with a
// delay that doubles, not at tomorrow's slot; its state keeps the attempt,
// the success and the error apart.
func TestManagerRetriesAFailedRun(t *testing.T) {
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	failures := 3
	hv := &hypervisortest.Memory{Fail: func(step string) error {
		if step == "snapshot" && failures > 0 {
			failures--
			return errors.New("host busy")
		}
		return nil
	}}
	task := &bootpoint.Task{Name: "web", Images: sampleDir(t, 1, 5), Trigger: bootpoint.Trigger{Kind: bootpoint.Daily, At: 3 * time.Hour, Location: time.UTC},
		Standby: &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: "web-standby"}}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: []*bootpoint.Task{task},
		Now: func() time.Time { return now }}

	r := tickOne(t, m)
	require.True(t, r.Ran)
	require.ErrorContains(t, r.Err, "host busy")
	st := taskState(t, m, "web")
	require.Equal(t, 1, st.Failures)
	require.Equal(t, now, st.LastAttempt)
	require.True(t, st.LastSuccess.IsZero(), "a failed run is not a success")
	require.Contains(t, st.LastError, "host busy")
	require.Equal(t, now, st.LastFailure)
	require.Equal(t, now.Add(time.Minute), st.RetryAt)
	require.Equal(t, now.Add(time.Minute), task.NextRun(now, st))

	now = now.Add(30 * time.Second)
	require.False(t, tickOne(t, m).Ran, "before its retry time")
	for i, delay := range []time.Duration{2 * time.Minute, 4 * time.Minute} {
		now = taskState(t, m, "web").RetryAt
		r = tickOne(t, m)
		require.True(t, r.Ran)
		require.Error(t, r.Err)
		st = taskState(t, m, "web")
		require.Equal(t, i+2, st.Failures)
		require.Equal(t, now.Add(delay), st.RetryAt, "failure %d", st.Failures)
	}

	now = taskState(t, m, "web").RetryAt // 03:07, the host no longer fails
	r = tickOne(t, m)
	require.NoError(t, r.Err)
	require.True(t, r.Ran)
	st = taskState(t, m, "web")
	require.Zero(t, st.Failures)
	require.Empty(t, st.LastError)
	require.True(t, st.RetryAt.IsZero())
	require.Equal(t, now, st.LastSuccess)
	require.Equal(t, now, st.LastAttempt)
	require.Equal(t, 1, st.LastSequence)
	require.Len(t, verifyAllOf(t, task), 1)
	require.Equal(t, time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), task.NextRun(now, st))
}

// The delay doubles up to MaxRetryDelay; a failure before the trigger is
// due (the set cannot be opened) is forgotten once the set opens again.
func TestManagerRetryDelayIsCapped(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	images := filepath.Join(t.TempDir(), "web")
	task := &bootpoint.Task{Name: "web", Images: images, Trigger: bootpoint.Trigger{Kind: bootpoint.Daily, At: 3 * time.Hour, Location: time.UTC},
		Standby: &bootpoint.Standby{Hypervisor: &hypervisortest.Memory{}, VM: bootpoint.VMSpec{Name: "web-standby"}}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: []*bootpoint.Task{task},
		Now: func() time.Time { return now }, RetryDelay: 10 * time.Second, MaxRetryDelay: time.Minute}
	var delays []time.Duration
	for range 6 {
		res, err := m.Tick(ctx)
		require.NoError(t, err)
		require.Error(t, res[0].Err)
		require.False(t, res[0].Ran)
		st, err := m.Status()
		require.NoError(t, err)
		delays = append(delays, st["web"].RetryAt.Sub(now))
		now = st["web"].RetryAt
	}
	require.Equal(t, []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute, time.Minute}, delays)

	// The set appears. Today's slot was never served (the task was
	// never up to date): the task runs now, and the failure is gone.
	_, err := sample.Write(ctx, images, sample.Options{DiskSize: 2 << 20, Seed: 8})
	require.NoError(t, err)
	res, err := m.Tick(ctx)
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	require.True(t, res[0].Ran)
	st, err := m.Status()
	require.NoError(t, err)
	require.False(t, st["web"].Failing())
}

// RunNow runs the task it names and no other, even one that is due.
func TestRunNowRunsOnlyThatTask(t *testing.T) {
	ctx := context.Background()
	hv := &hypervisortest.Memory{}
	var tasks []*bootpoint.Task
	for i, name := range []string{"a", "b"} {
		tasks = append(tasks, &bootpoint.Task{Name: name, Images: sampleDir(t, 1, uint64(i)), Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
			Standby: &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: name + "-standby"}}})
	}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: tasks}
	r, err := m.RunNow(ctx, "a")
	require.NoError(t, err)
	require.True(t, r.Ran)
	require.Equal(t, "a", r.Task)
	require.Equal(t, []string{"a-standby"}, hv.VMs())
	_, err = m.RunNow(ctx, "c")
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
}

// A run whose context is cancelled (a shutdown) undoes its step, records
// "interrupted" without the transport's message, and the next pass
// resumes it.
func TestManagerInterruptedRun(t *testing.T) {
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	ctx, cancel := context.WithCancel(context.Background())
	interrupt := false
	hv := &hypervisortest.Memory{Fail: func(step string) error {
		if step == "write" && interrupt {
			interrupt = false
			cancel()
			return errors.New(`Put "https://esx01/nfc/52b1c0de/disk-0.vmdk": context canceled`)
		}
		return nil
	}}
	task := &bootpoint.Task{Name: "web", Images: sampleDir(t, 1, 6), Trigger: bootpoint.Trigger{Kind: bootpoint.Daily, At: 3 * time.Hour, Location: time.UTC},
		Standby: &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: "web-standby"}}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: []*bootpoint.Task{task},
		Now: func() time.Time { return now }}
	res, err := m.Tick(ctx)
	require.NoError(t, err)
	require.NoError(t, res[0].Err)

	_, err = sample.Extend(context.Background(), task.Images, 1, 9, nil)
	require.NoError(t, err)
	now = now.Add(24 * time.Hour)
	interrupt = true
	res, err = m.Tick(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, res[0].Err, bootpoint.ErrInterrupted)
	require.NotContains(t, res[0].Err.Error(), "nfc")
	st, err := m.Status()
	require.NoError(t, err)
	require.True(t, st["web"].Interrupted)
	require.Empty(t, st["web"].LastError)
	require.False(t, st["web"].Failing())
	require.Equal(t, 1, st["web"].BootPoints)
	b, err := os.ReadFile(m.StatePath)
	require.NoError(t, err)
	require.NotContains(t, string(b), "nfc", "the state file holds no internal URL")

	// A restarted manager resumes at its first pass, the same day.
	now = now.Add(time.Minute)
	again := &bootpoint.Manager{StatePath: m.StatePath, Tasks: m.Tasks, Now: func() time.Time { return now }}
	res, err = again.Tick(context.Background())
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	require.True(t, res[0].Ran)
	st, err = again.Status()
	require.NoError(t, err)
	require.False(t, st["web"].Interrupted)
	require.Len(t, verifyAllOf(t, task), 2)
}

// A state file written before runs and failures were told apart keeps
// its meaning: lastRun is a success only where no error was recorded.
func TestLoadStateMigratesLastRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"version":1,"tasks":{
		"ok":{"lastRun":"2026-11-20T03:00:00Z","lastSequence":3,"bootPoints":4,"waiting":0,"pending":0},
		"bad":{"lastRun":"2026-11-21T03:00:00Z","lastSequence":-1,"bootPoints":0,"lastError":"no network","waiting":1,"pending":0}}}`), 0o644))
	s, err := bootpoint.LoadState(path)
	require.NoError(t, err)
	day := func(d int) time.Time { return time.Date(2026, 11, d, 3, 0, 0, 0, time.UTC) }
	require.Equal(t, day(20), s.Tasks["ok"].LastSuccess)
	require.False(t, s.Tasks["ok"].Failing())
	require.True(t, s.Tasks["bad"].LastSuccess.IsZero())
	require.Equal(t, day(21), s.Tasks["bad"].LastAttempt)
	require.True(t, s.Tasks["bad"].Failing())
}

// A hypervisor's error text is the host's: of any length, with escape
// sequences. The state keeps one printable line of bounded length.
func TestManagerClipsHostErrors(t *testing.T) {
	ctx := context.Background()
	hostText := "\x1b[2J\x1b[Hfault: " + strings.Repeat("disk busy\r\n", 100000)
	hv := &hypervisortest.Memory{Fail: func(step string) error {
		if step == "snapshot" {
			return fmt.Errorf("host: %s: %w", hostText, io.ErrUnexpectedEOF)
		}
		return nil
	}}
	task := &bootpoint.Task{Name: "web", Images: sampleDir(t, 1, 5), Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
		Standby: &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: "web-standby"}}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: []*bootpoint.Task{task}}
	res, err := m.Tick(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, res[0].Err, io.ErrUnexpectedEOF, "the caller still gets the whole error")
	st, err := m.Status()
	require.NoError(t, err)
	got := st["web"].LastError
	require.NotEmpty(t, got)
	require.LessOrEqual(t, len(got), 2048)
	require.Contains(t, got, "fault: disk busy")
	require.True(t, utf8.ValidString(got))
	require.False(t, strings.ContainsAny(got, "\x1b\r\n"), "control characters kept: %q", got[:64])
	raw, err := os.ReadFile(m.StatePath)
	require.NoError(t, err)
	require.Less(t, len(raw), 16<<10, "state file of %d bytes", len(raw))
}
