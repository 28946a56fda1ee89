package esx

import (
	"bytes"
	"context"
	"image/png"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/esxsim"
)

// A test clone's guest, as the simulator plays it: its heartbeat and
// its console's screenshot, a PNG downloaded and deleted from its folder.
func TestGuestStatusAndScreenshot(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, _ := createStandby(t, h, bootpoint.VMSpec{Name: "sb", CPUs: 1, MemoryMiB: 64, GuestID: "windows2019srv_64Guest"})
	p0, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)

	sim.SetGuestBehaviour(func(name string) esxsim.GuestBehaviour {
		if name == "sb-silent" {
			return esxsim.GuestBehaviour{Screen: esxsim.TextScreen(1)}
		}
		return esxsim.GuestBehaviour{Tools: true, GuestFullName: "Microsoft Windows Server 2019 (64-bit)", Screen: esxsim.TextScreen(25)}
	})
	for _, c := range []struct {
		name  string
		tools bool
		lines int
	}{{"sb-talks", true, 25}, {"sb-silent", false, 1}} {
		clone, err := h.CloneForTest(ctx, vm, p0, c.name, "")
		require.NoError(t, err)
		_, err = h.Screenshot(ctx, clone)
		require.Error(t, err, "no console while powered off")
		require.NoError(t, h.SetPower(ctx, clone, true))
		st, err := h.GuestStatus(ctx, clone)
		require.NoError(t, err)
		if c.tools {
			assert.Equal(t, bootpoint.GuestStatus{ToolsRunning: true, Heartbeat: "green", GuestID: "windows2019srv_64Guest", GuestFullName: "Microsoft Windows Server 2019 (64-bit)"}, st)
		} else {
			assert.False(t, st.ToolsRunning)
			assert.Equal(t, "gray", st.Heartbeat)
		}
		shot, err := h.Screenshot(ctx, clone)
		require.NoError(t, err)
		img, err := png.Decode(bytes.NewReader(shot))
		require.NoError(t, err)
		var want bytes.Buffer
		require.NoError(t, png.Encode(&want, esxsim.TextScreen(c.lines)))
		assert.Equal(t, want.Bytes(), shot, "the console's picture")
		assert.Equal(t, 720, img.Bounds().Dx())
		require.NoError(t, h.SetPower(ctx, clone, false))
		require.NoError(t, h.DestroyVM(ctx, clone))
	}
	assert.Equal(t, 2, sim.ScreenshotCount())
	requireNoStrayFiles(t, sim)

	// A host agent that hangs: the caller's deadline ends the wait.
	sim.SetGuestBehaviour(func(string) esxsim.GuestBehaviour { return esxsim.GuestBehaviour{Stuck: true} })
	clone, err := h.CloneForTest(ctx, vm, p0, "sb-stuck", "")
	require.NoError(t, err)
	require.NoError(t, h.SetPower(ctx, clone, true))
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = h.Screenshot(short, clone)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
