package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/sample"
)

// Without GOVC_URL the manager's commands can be tried one after another:
// each starts the simulator on the datastore folder the last one left,
// with the VMs it made.
func TestCommandsWithoutESXi(t *testing.T) {
	t.Setenv("GOVC_URL", "")
	ctx := context.Background()
	dir := t.TempDir()
	_, err := sample.Write(ctx, filepath.Join(dir, "web01"), sample.Options{DiskSize: 4 << 20, Incrementals: 2})
	require.NoError(t, err)
	config := filepath.Join(dir, "standby.json")
	require.NoError(t, os.WriteFile(config, []byte(`{"tasks":[{"name":"web01","images":"web01","trigger":"immediately"}]}`), 0o644))
	cmd := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		err := run(ctx, append([]string{args[0], "--config", config}, args[1:]...), &out)
		require.NoError(t, err, "%v: %s", args, out.String())
		return out.String()
	}
	require.Contains(t, cmd("sync"), "web01: 1 boot point(s) made")
	_, err = os.Stat(esxsim.InventoryFile(filepath.Join(dir, "standby-datastore")))
	require.NoError(t, err, "the simulator's inventory is kept beside its datastore")
	require.Contains(t, cmd("status"), "web01-standby")
	_, err = sample.Extend(ctx, filepath.Join(dir, "web01"), 1, 5, nil)
	require.NoError(t, err)
	require.Contains(t, cmd("sync"), "web01: 1 boot point(s) made", "the next run finds the standby the first made")
	require.Contains(t, cmd("testboot", "web01", "--network", "Isolated Network"), "chain is untouched")
	require.Contains(t, cmd("failover", "web01", "--point", "2", "--network", "Failover Network"), "running from boot point 2")
	cmd("delete", "web01", "--with-vm")
	sim, err := esxsim.Open(ctx, filepath.Join(dir, "standby-datastore"))
	require.NoError(t, err)
	defer sim.Close()
	_, err = sim.PowerState("web01-standby")
	require.Error(t, err, "deleted, and the next start knows it")
}

// standby run over more points than a VM keeps boot points: the oldest
// are consolidated, the ones kept are verified; run again on the same
// datastore folder, it finds the VM and adds what is new.
func TestRunManyPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("34 boot points: not in -short")
	}
	t.Setenv("GOVC_URL", "")
	ctx := context.Background()
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	_, err := sample.Write(ctx, images, sample.Options{DiskSize: 2 << 20, Incrementals: 33})
	require.NoError(t, err)
	standby := func() string {
		t.Helper()
		var out bytes.Buffer
		err := run(ctx, []string{"run", "--images", images, "--datastore-dir", filepath.Join(dir, "ds")}, &out)
		require.NoError(t, err, out.String())
		return out.String()
	}
	require.Contains(t, standby(), "30 boot points (34 new, 30 of them verified, 4 consolidated since)")
	_, err = sample.Extend(ctx, images, 1, 35, nil)
	require.NoError(t, err)
	require.Contains(t, standby(), "30 boot points (1 new, 1 of them verified, 0 consolidated since)")
}
