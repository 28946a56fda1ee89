package bootpoint_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
)

// The boot check of each boot point: a heartbeat passes it, a screenshot
// decides without one, a guest that never settles times out; the clone
// is always deleted and the standby's chain untouched.
func TestCheckBoot(t *testing.T) {
	set := newSample(t, 5)
	hv := &hypervisortest.Memory{}
	// The guest of each boot point's clone: 1 runs Tools, 2 and 3 show a
	// good and a bad screen, 4's Tools never turn green, 5's screenshot
	// cannot be read back.
	hv.Guest = func(name string, _ [][]byte) (bootpoint.GuestStatus, []byte) {
		switch {
		case strings.HasSuffix(name, "-0001"):
			return bootpoint.GuestStatus{ToolsRunning: true, Heartbeat: "green", GuestID: "otherLinux64Guest", GuestFullName: "Debian GNU/Linux 12"}, nil
		case strings.HasSuffix(name, "-0002"):
			return bootpoint.GuestStatus{Heartbeat: "gray"}, []byte("login:")
		case strings.HasSuffix(name, "-0003"):
			return bootpoint.GuestStatus{Heartbeat: "gray"}, []byte("INACCESSIBLE_BOOT_DEVICE")
		case strings.HasSuffix(name, "-0004"):
			return bootpoint.GuestStatus{ToolsRunning: true, Heartbeat: "red"}, []byte("login:")
		}
		return bootpoint.GuestStatus{Heartbeat: "gray"}, []byte("garbage")
	}
	s := &bootpoint.Standby{Hypervisor: hv, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "web01"}}
	ctx := context.Background()
	_, err := s.Sync(ctx, set)
	require.NoError(t, err)
	before, err := hv.Snapshots(ctx, bootpoint.VM{Name: "web01"})
	require.NoError(t, err)
	judge := func(png []byte) (bool, string, string, error) {
		switch string(png) {
		case "login:":
			return true, "text-screen", "many text rows", nil
		case "garbage":
			return false, "", "", assert.AnError
		}
		return false, "stop-screen", "blue", nil
	}
	opts := bootpoint.BootCheckOptions{Network: "isolated", Poll: time.Millisecond, Settle: 20 * time.Millisecond, ToolsWait: 50 * time.Millisecond,
		Timeout: time.Minute, Judge: judge}
	cases := []struct {
		seq             int
		verdict, method string
		rule            string
		timeout         time.Duration
	}{
		{1, bootpoint.BootPassed, "heartbeat", "tools-heartbeat", 0},
		{2, bootpoint.BootPassed, "screenshot", "text-screen", 0},
		{3, bootpoint.BootFailed, "screenshot", "stop-screen", 0},
		{4, bootpoint.BootPassed, "screenshot", "text-screen", 0}, // Tools, but no green heartbeat: the screen decides after ToolsWait
		{4, bootpoint.BootTimedOut, "", "timeout", 30 * time.Millisecond},
	}
	for _, c := range cases {
		o := opts
		if c.timeout > 0 {
			o.Timeout, o.Settle, o.ToolsWait = c.timeout, time.Hour, time.Hour
		}
		res, err := s.CheckBoot(ctx, c.seq, o)
		require.NoError(t, err, "boot point %d", c.seq)
		assert.Equal(t, c.seq, res.Sequence)
		assert.Equal(t, c.verdict, res.Verdict, "boot point %d", c.seq)
		assert.Equal(t, c.method, res.Method, "boot point %d", c.seq)
		assert.Equal(t, c.rule, res.Rule, "boot point %d", c.seq)
		if c.method == "screenshot" {
			assert.NotEmpty(t, res.Screenshot)
		}
		assert.Equal(t, []string{"web01"}, hv.VMs(), "the clone is deleted")
	}
	res, err := s.CheckBoot(ctx, 1, opts)
	require.NoError(t, err)
	assert.Equal(t, "Debian GNU/Linux 12", res.Guest.FullName)
	assert.Contains(t, res.Detail, "Debian GNU/Linux 12")

	// A screenshot the rules cannot read is an error, not a verdict.
	_, err = s.CheckBoot(ctx, 5, opts)
	require.ErrorIs(t, err, assert.AnError)
	assert.Equal(t, []string{"web01"}, hv.VMs())
	// Without screen rules a guest without Tools cannot pass.
	o := opts
	o.Judge = nil
	res, err = s.CheckBoot(ctx, 2, o)
	require.NoError(t, err)
	assert.Equal(t, bootpoint.BootFailed, res.Verdict)
	assert.Equal(t, "no-rules", res.Rule)

	after, err := hv.Snapshots(ctx, bootpoint.VM{Name: "web01"})
	require.NoError(t, err)
	require.Equal(t, before, after)
	assert.False(t, bytes.Contains([]byte(strings.Join(hv.VMs(), ",")), []byte("bootcheck")))
}
