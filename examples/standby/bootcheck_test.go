package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/sample"
)

// Boot checks through the commands: every new boot point is checked on a
// throwaway clone; a guest that boots passes, one that shows nothing
// fails, raises the alert command and shows in status; failover without
// --point takes the newest boot point that passed, and says so.
func TestBootCheckCommands(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh for the alert command")
	}
	ctx := context.Background()
	sim := useSim(t)
	dir := t.TempDir()
	_, err = sample.Write(ctx, filepath.Join(dir, "web01"), sample.Options{DiskSize: 4 << 20, Incrementals: 1})
	require.NoError(t, err)
	alerts := filepath.Join(dir, "alerts.json")
	config := filepath.Join(dir, "standby.json")
	cfg, err := json.Marshal(map[string]any{
		"alertCommand": []string{sh, "-c", "cat > " + alerts},
		"tasks": []map[string]any{{"name": "web01", "images": "web01", "trigger": "immediately",
			"bootCheck": "every", "bootCheckNetwork": esxsim.Networks[2], "bootCheckSettle": "1s"}},
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(config, cfg, 0o644))
	cmd := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{args[0], "--config", config}, args[1:]...), &out)
		return out.String(), err
	}
	lastCheck := func() *bootpoint.BootCheck {
		out, _ := cmd("status", "--json")
		var rows []statusRow
		require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
		return rows[0].LastBootCheck
	}

	out, err := cmd("sync")
	require.NoError(t, err, out)
	c := lastCheck()
	require.NotNil(t, c, "the new boot point was checked")
	assert.Equal(t, bootpoint.BootPassed, c.Verdict)
	assert.Equal(t, "heartbeat", c.Method)
	assert.Equal(t, 1, c.Sequence)

	// The next point's guest shows a blank console and has no Tools.
	sim.SetGuestBehaviour(func(string) esxsim.GuestBehaviour { return esxsim.GuestBehaviour{} })
	_, err = sample.Extend(ctx, filepath.Join(dir, "web01"), 1, 9, nil)
	require.NoError(t, err)
	out, err = cmd("sync")
	require.Error(t, err, "a failed boot check fails the pass: %s", out)
	assert.Contains(t, out, "boot check of boot point 2: FAILED")
	c = lastCheck()
	require.NotNil(t, c)
	assert.Equal(t, 2, c.Sequence)
	assert.Equal(t, bootpoint.BootFailed, c.Verdict)
	assert.Equal(t, "screenshot", c.Method)
	assert.Equal(t, "blank", c.Rule, "judged by bootcheck's rules")
	png, err := os.ReadFile(c.ScreenshotFile)
	require.NoError(t, err, "the screenshot is kept as evidence")
	assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG")))
	var alert bootpoint.BootAlert
	b, err := os.ReadFile(alerts)
	require.NoError(t, err, "the alert command ran")
	require.NoError(t, json.Unmarshal(b, &alert))
	assert.Equal(t, "web01", alert.Task)
	assert.Equal(t, 2, alert.Check.Sequence)
	table, _ := cmd("status")
	assert.Contains(t, table, "2 FAILED")

	// By hand, with its exit status.
	out, err = cmd("bootcheck", "web01", "--point", "1")
	require.Error(t, err, "boot point 1 fails now too: %s", out)
	sim.SetGuestBehaviour(nil)
	out, err = cmd("bootcheck", "web01", "--point", "1")
	require.NoError(t, err, out)
	assert.Contains(t, out, "boot point 1 of web01-standby: passed")

	out, err = cmd("failover", "web01", "--network", esxsim.Networks[1])
	require.NoError(t, err, out)
	assert.Contains(t, out, "running from boot point 1")
	assert.Contains(t, out, "the newest that passed its boot check")
	assert.False(t, strings.Contains(strings.Join(vmNamesOf(t, sim), ","), "bootcheck"), "no clone left")
}

func vmNamesOf(t *testing.T, sim *esxsim.Simulator) []string {
	t.Helper()
	host, err := esx.Connect(context.Background(), esx.Config{URL: sim.URL(), Insecure: true, Datastore: esxsim.Datastore})
	require.NoError(t, err)
	defer host.Close(context.Background())
	var names []string
	for _, n := range []string{"web01-standby", "web01-standby-bootcheck-0001", "web01-standby-bootcheck-0002"} {
		if _, err := host.FindVM(context.Background(), n); err == nil {
			names = append(names, n)
		}
	}
	return names
}
