package bootpoint_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
	"github.com/standbykit/standbykit/internal/sample"
)

// The manager's boot checks: every new boot point of one task, the
// newest once a day for another, at most one at a time per host; the
// evidence kept (state and screenshot), an alert run with the failure as
// JSON, and the newest proven boot point found.
func TestManagerBootChecks(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh for the alert command")
	}
	now := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
	ctx := context.Background()
	dir := t.TempDir()
	// The samples have points 0 to 6: boot points 6 and 8 boot (a text
	// screen); 7 shows a stop screen.
	hv := &hypervisortest.Memory{Guest: func(name string, _ [][]byte) (bootpoint.GuestStatus, []byte) {
		if strings.HasSuffix(name, "-0007") {
			return bootpoint.GuestStatus{Heartbeat: "gray"}, []byte("STOP")
		}
		return bootpoint.GuestStatus{Heartbeat: "gray"}, []byte("login:")
	}}
	judge := func(png []byte) (bool, string, string, error) {
		if string(png) == "STOP" {
			return false, "stop-screen", "blue", nil
		}
		return true, "text-screen", "25 rows", nil
	}
	opts := bootpoint.BootCheckOptions{Poll: time.Millisecond, Settle: time.Millisecond, ToolsWait: time.Millisecond, Timeout: time.Minute}
	every := &bootpoint.Task{Name: "every", Images: sampleDir(t, 0, 1), Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
		Standby: &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: "every"}}, BootCheck: bootpoint.BootCheckEvery, BootCheckOptions: opts}
	daily := &bootpoint.Task{Name: "daily", Images: sampleDir(t, 0, 2), Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
		Standby: &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: "daily"}}, BootCheck: bootpoint.BootCheckDaily, BootCheckOptions: opts}
	alerts := filepath.Join(dir, "alerts.jsonl")
	m := &bootpoint.Manager{StatePath: filepath.Join(dir, "state.json"), Tasks: []*bootpoint.Task{every, daily}, Now: func() time.Time { return now },
		BootChecks: bootpoint.BootChecks{Judge: judge, Alert: bootpoint.CommandAlert([]string{sh, "-c", "cat >> " + alerts + "; echo >> " + alerts})}}
	tick := func() {
		t.Helper()
		res, err := m.Tick(ctx)
		require.NoError(t, err)
		for _, r := range res {
			require.NoError(t, r.Err, r.Task)
		}
	}
	extend := func(task *bootpoint.Task) {
		_, err := sample.Extend(ctx, task.Images, 1, uint64(now.Unix()), nil)
		require.NoError(t, err)
	}
	checks := func(name string) []bootpoint.BootCheck {
		st, err := m.Status()
		require.NoError(t, err)
		return st[name].BootChecks
	}
	verdicts := func(cs []bootpoint.BootCheck) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Verdict)
		}
		return out
	}

	tick() // boot point 6 of each: both checked
	require.Equal(t, []string{bootpoint.BootPassed}, verdicts(checks("every")))
	require.Equal(t, []string{bootpoint.BootPassed}, verdicts(checks("daily")))
	extend(every)
	extend(daily)
	now = now.Add(time.Hour)
	tick() // boot point 7: "every" checks it, "daily" waits for tomorrow
	require.Equal(t, []string{bootpoint.BootPassed, bootpoint.BootFailed}, verdicts(checks("every")))
	require.Len(t, checks("daily"), 1)
	now = now.Add(24 * time.Hour)
	tick() // no new point: "daily" checks its newest, boot point 7
	require.Equal(t, []string{bootpoint.BootPassed, bootpoint.BootFailed}, verdicts(checks("daily")))
	assert.Equal(t, 7, checks("daily")[1].Sequence)

	// The evidence: each screenshot in its file, named in the state.
	for _, c := range checks("every") {
		b, err := os.ReadFile(c.ScreenshotFile)
		require.NoError(t, err)
		assert.NotEmpty(t, b)
		assert.Equal(t, filepath.Join(dir, "evidence", "every"), filepath.Dir(c.ScreenshotFile))
		assert.Equal(t, "screenshot", c.Method)
	}
	// The alerts: one per failed check, as JSON.
	data, err := os.ReadFile(alerts)
	require.NoError(t, err)
	lines := strings.Fields(strings.TrimSpace(string(data)))
	require.Len(t, lines, 2)
	var a bootpoint.BootAlert
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &a))
	assert.Equal(t, "bootcheck-failed", a.Event)
	assert.Equal(t, "every", a.Task)
	assert.Equal(t, 7, a.Check.Sequence)
	assert.Equal(t, "stop-screen", a.Check.Rule)

	// Failover's choice: the newest boot point that passed.
	bp, c, err := m.NewestProven(ctx, "every")
	require.NoError(t, err)
	assert.Equal(t, 6, bp.Meta.Sequence, "7 failed")
	assert.Equal(t, bootpoint.BootPassed, c.Verdict)
	extend(every)
	tick()
	bp, _, err = m.NewestProven(ctx, "every")
	require.NoError(t, err)
	assert.Equal(t, 8, bp.Meta.Sequence)

	// No clone is left behind.
	assert.ElementsMatch(t, []string{"every", "daily"}, hv.VMs())
}
