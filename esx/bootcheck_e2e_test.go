package esx_test

import (
	"context"
	"image"
	"image/color"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootcheck"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/sample"
)

// Boot checks on the simulator: a guest whose Tools answer passes; one
// without shows a booted console, a boot loader's error line, or nothing;
// a host that never delivers the screenshot times the check out. The
// clone is deleted every time, and the standby's chain is untouched.
func TestBootCheckOnSimulator(t *testing.T) {
	sim, h := connectSim(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "set")
	_, err := sample.Write(ctx, dir, sample.Options{DiskSize: 4 << 20, Incrementals: 1})
	require.NoError(t, err)
	set, err := aipimage.OpenDir(dir, nil)
	require.NoError(t, err)
	defer set.Close()
	s := &bootpoint.Standby{Hypervisor: h, Inspector: shiftingPatches{}, VM: bootpoint.VMSpec{Name: "web01"}}
	_, err = s.Sync(ctx, set)
	require.NoError(t, err)
	_, before, err := s.BootPoints(ctx)
	require.NoError(t, err)

	opts := bootpoint.BootCheckOptions{Network: esxsim.Networks[2], Poll: 5 * time.Millisecond, Settle: 30 * time.Millisecond,
		ToolsWait: 30 * time.Millisecond, Timeout: time.Minute, Judge: bootcheck.Rules{}.JudgePNG}
	for _, c := range []struct {
		name    string
		guest   esxsim.GuestBehaviour
		timeout time.Duration
		verdict string
		rule    string
	}{
		{"tools", esxsim.GuestBehaviour{Tools: true, GuestFullName: "Debian GNU/Linux 12 (64-bit)"}, 0, bootpoint.BootPassed, "tools-heartbeat"},
		{"console", esxsim.GuestBehaviour{Screen: esxsim.TextScreen(25)}, 0, bootpoint.BootPassed, "screen"},
		{"boot-loader-error", esxsim.GuestBehaviour{Screen: esxsim.TextScreen(2)}, 0, bootpoint.BootFailed, "boot-loader-text"},
		{"blank", esxsim.GuestBehaviour{}, 0, bootpoint.BootFailed, "blank"},
		{"stop-screen", esxsim.GuestBehaviour{Screen: blueScreen()}, 0, bootpoint.BootFailed, "blue-screen"},
		{"stuck", esxsim.GuestBehaviour{Stuck: true}, 300 * time.Millisecond, bootpoint.BootTimedOut, "timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sim.SetGuestBehaviour(func(string) esxsim.GuestBehaviour { return c.guest })
			o := opts
			if c.timeout > 0 {
				o.Timeout = c.timeout
			}
			res, err := s.CheckBoot(ctx, -1, o)
			require.NoError(t, err)
			assert.Equal(t, c.verdict, res.Verdict)
			assert.Equal(t, c.rule, res.Rule)
			assert.Equal(t, 1, res.Sequence)
			_, err = h.FindVM(ctx, "web01-bootcheck-0001")
			require.ErrorIs(t, err, bootpoint.ErrNotFound, "the clone is deleted")
			unused, err := sim.UnusedDiskFiles()
			require.NoError(t, err)
			require.Empty(t, unused)
		})
	}
	_, after, err := s.BootPoints(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
}

// blueScreen is a Windows 10 stop screen: #0078D7 with a few lines of
// white text.
func blueScreen() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 1024, 768))
	for y := range 768 {
		for x := range 1024 {
			c := color.RGBA{0x00, 0x78, 0xd7, 0xff}
			if y > 300 && y < 340 && x > 100 && x < 700 && x%9 < 6 {
				c = color.RGBA{0xff, 0xff, 0xff, 0xff}
			}
			img.Set(x, y, c)
		}
	}
	return img
}
