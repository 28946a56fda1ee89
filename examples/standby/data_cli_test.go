package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/sample"
)

// simStandby returns a runner of the built standby command against the
// simulator sim, which outlives each command as a host would.
func simStandby(t *testing.T, sim *esxsim.Simulator) func(args ...string) (string, error) {
	t.Helper()
	bin := standbyBinary(t)
	env := append(os.Environ(), "GOVC_URL="+sim.URL(), "GOVC_INSECURE=true", "GOVC_DATASTORE="+esxsim.Datastore,
		esx.EnvApplianceImage+"="+esx.ApplianceImageNone)
	return func(args ...string) (string, error) {
		var buf bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &buf, &buf
		err := cmd.Run()
		return buf.String(), err
	}
}

// TestCLIVerifyNewFullAndReseed drives the built standby command: sync
// reads each new boot point back, verify checks what a boot point wrote or
// every byte, a new full image in the set becomes a boot point of the same
// VM, and a resized disk stops the task until reseed replaces the VM.
func TestCLIVerifyNewFullAndReseed(t *testing.T) {
	ctx := context.Background()
	sim, err := esxsim.Start(ctx, t.TempDir())
	require.NoError(t, err)
	defer sim.Close()
	standby := simStandby(t, sim)
	dir := t.TempDir()
	images := filepath.Join(dir, "web01")
	_, err = sample.Write(ctx, images, sample.Options{DiskSize: 4 << 20, Incrementals: 1, Seed: 50})
	require.NoError(t, err)
	config := filepath.Join(dir, "standby.json")
	require.NoError(t, os.WriteFile(config, []byte(`{"tasks":[
		{"name":"web01","images":"web01","trigger":"immediately","fullVerify":"weekly"}]}`), 0o644))
	ok := func(args ...string) string {
		t.Helper()
		out, err := standby(append([]string{args[0], "--config", config}, args[1:]...)...)
		require.NoError(t, err, "%v: %s", args, out)
		return out
	}
	state := func() statusRow {
		t.Helper()
		var rows []statusRow
		// status exits 3 while the task needs a decision: its JSON is
		// what is looked at here.
		out, _ := standby("status", "--config", config, "--json")
		require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
		require.Len(t, rows, 1)
		return rows[0]
	}

	out := ok("sync")
	require.Contains(t, out, "web01: 1 boot point(s) made")
	require.Contains(t, out, "written and read back")
	require.Contains(t, out, "scheduled full verification of boot point 1: 4.0 MiB read back")
	require.False(t, state().LastFullVerify.IsZero())
	require.Contains(t, ok("verify", "web01"), "boot point 1 of web01-standby verified (what it wrote)")
	out = ok("verify", "web01", "--full", "--point", "1")
	require.Contains(t, out, "verified (every byte): 4.0 MiB read back")

	// The weekly full image: a boot point of the same VM, sync says what
	// it wrote (the differences, not the disk).
	_, err = sample.ExtendFull(ctx, images, 51, nil)
	require.NoError(t, err)
	out = ok("sync")
	require.Contains(t, out, "web01: 1 boot point(s) made")
	require.NotContains(t, out, "4.0 MiB written")
	st := state()
	require.Equal(t, 2, st.LastSequence)
	require.Equal(t, 2, st.BootPoints)
	require.Contains(t, ok("verify", "web01", "--full"), "boot point 2 of web01-standby verified (every byte)")

	// A grown disk: sync fails and the task waits for a decision.
	_, err = sample.ExtendResized(ctx, images, 6<<20, 52, nil)
	require.NoError(t, err)
	out, err = standby("sync", "--config", config)
	require.Error(t, err, out)
	require.Contains(t, out, "disk 0 was resized from 4194304 to 6291456 bytes at point 3")
	require.Contains(t, state().NeedsDecision, "reseed")
	require.Contains(t, ok("verify", "web01"), "boot point 2", "the old boot points stay")

	out = ok("reseed", "web01")
	require.Contains(t, out, "web01-standby was made anew from point 3")
	st = state()
	require.Empty(t, st.NeedsDecision)
	require.Equal(t, 3, st.LastSequence)
	require.Equal(t, 1, st.BootPoints)
	require.Contains(t, ok("verify", "web01", "--full"), "boot point 3 of web01-standby verified (every byte): 6.0 MiB read back")
	out, err = standby("reseed", "--config", config, "web01")
	require.Error(t, err)
	require.Contains(t, out, "needs no reseed")

	_, err = sample.Extend(ctx, images, 1, 53, nil)
	require.NoError(t, err)
	require.Contains(t, ok("sync"), "web01: 1 boot point(s) made")

	out, err = standby("verify", "--config", config, "web01", "--point", "0")
	require.Error(t, err)
	require.Contains(t, out, "no boot point 0")

	require.NoError(t, os.WriteFile(config, []byte(`{"tasks":[{"name":"web01","images":"web01","verifyWrites":false}]}`), 0o644))
	_, err = sample.Extend(ctx, images, 1, 54, nil)
	require.NoError(t, err)
	require.Contains(t, ok("sync"), "not read back: verifyWrites is off")

	require.NoError(t, os.WriteFile(config, []byte(`{"tasks":[{"name":"web01","images":"web01","fullVerify":"fortnightly"}]}`), 0o644))
	out, err = standby("status", "--config", config)
	require.Error(t, err)
	require.Contains(t, out, "fullVerify")
}
