package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/cli"
	"github.com/standbykit/standbykit/internal/sample"
)

// The demo shows P2V at work on both sample systems: the plan with its
// real patches, every boot point verified, and a patched line as the
// boot point's disk on the datastore holds it.
func TestDemo(t *testing.T) {
	t.Setenv("GOVC_URL", "")
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"demo", "--dir", t.TempDir()}, &out))
	s := out.String()
	for _, want := range []string{
		"firmware bios, guest debian12_64Guest, controller sata\n",
		"6 patches, in place, for 3 reasons:",
		"- Debian GNU/Linux 12 (bookworm): /etc/fstab names disks by device",
		"- Debian GNU/Linux 12 (bookworm): the kernel command line in /boot/grub/grub.cfg names the root disk by device",
		"- Debian GNU/Linux 12 (bookworm): /etc/udev/rules.d/70-persistent-net.rules pins interface names",
		"     /etc/fstab\n       before: /dev/sda1 / ext4 errors=remount-ro 0 1\n" +
			"       after:  UUID=2f6d4a61-83c4-4d5e-9b1a-7c0e5d3a9f12 / ext4 errors=remount-ro 0 1\n",
		"       before: linux /boot/vmlinuz-6.1.0-13-amd64 root=/dev/sda1 ro quiet\n" +
			"       after:  linux /boot/vmlinuz-6.1.0-13-amd64 root=UUID=2f6d4a61-83c4-4d5e-9b1a-7c0e5d3a9f12 ro quiet\n",

		"firmware efi, guest windows2019srv_64Guest, controller lsilogic-sas\n",
		"3 patches, in place, for 2 reasons:",
		"- Windows Server 2019 Standard: make the LSI_SAS driver boot-start (Start=0) in ControlSet001",
		"UpperFilters of the DiskDrive class names bkagtflt, which has no driver service",
		"     HKLM\\SYSTEM\\ControlSet001\\Services\\LSI_SAS\n       before: Start = 3\n       after:  Start = 0\n",
		"       before: UpperFilters = partmgr, bkagtflt\n       after:  UpperFilters = partmgr\n",

		"web01-standby  simulator  7 ",
		"fs01-standby   simulator  7 ",
	} {
		require.Contains(t, s, want)
	}
	// Every boot point verified, each with its point's patches.
	require.Len(t, regexp.MustCompile(`(?m)^     \d  +bootpoint 000\d .* 6  +identical$`).FindAllString(s, -1), 7, s)
	require.Len(t, regexp.MustCompile(`(?m)^     \d  +bootpoint 000\d .* 3  +identical$`).FindAllString(s, -1), 7, s)
}

func TestUsage(t *testing.T) {
	err := run(context.Background(), nil, &bytes.Buffer{})
	require.Equal(t, cli.ExitUsage, cli.Code(err))
	err = run(context.Background(), []string{"pause", "--config", "x"}, &bytes.Buffer{})
	require.Equal(t, cli.ExitUsage, cli.Code(err))
	require.ErrorContains(t, err, "one task name")
}

// The manager commands against one simulator that outlives each command,
// as a real host would.
func TestManagerCommands(t *testing.T) {
	ctx := context.Background()
	sim := useSim(t)

	dir := t.TempDir()
	for i, name := range []string{"web01", "db01"} {
		_, err := sample.Write(ctx, filepath.Join(dir, name), sample.Options{DiskSize: 4 << 20, Incrementals: 2, Seed: uint64(i)})
		require.NoError(t, err)
	}
	config := filepath.Join(dir, "standby.json")
	require.NoError(t, os.WriteFile(config, []byte(`{"tasks":[
		{"name":"web01","images":"web01","trigger":"immediately","vm":{"network":"VM Network"}},
		{"name":"db01","images":"db01","trigger":"every:2"}]}`), 0o644))
	cmd := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		err := run(ctx, append([]string{args[0], "--config", config}, args[1:]...), &out)
		require.NoError(t, err, "%v: %s", args, out.String())
		return out.String()
	}
	status := func() map[string]statusRow {
		var rows []statusRow
		require.NoError(t, json.Unmarshal([]byte(cmd("status", "--json")), &rows))
		m := map[string]statusRow{}
		for _, r := range rows {
			m[r.Task] = r
		}
		return m
	}

	require.Contains(t, cmd("status"), "web01  web01-standby  new")
	out := cmd("sync")
	require.Contains(t, out, "web01: 1 boot point(s) made")
	require.Contains(t, out, "db01: 1 boot point(s) made")
	st := status()
	require.Equal(t, 2, st["web01"].LastSequence)
	require.Equal(t, 1, st["db01"].BootPoints)

	cmd("pause", "web01")
	_, err := sample.Extend(ctx, filepath.Join(dir, "web01"), 1, 5, nil)
	require.NoError(t, err)
	require.Contains(t, cmd("sync"), "web01: paused")
	require.Equal(t, "paused", status()["web01"].State)
	out = cmd("run-now", "web01")
	require.Contains(t, out, "web01: 1 boot point(s) made")
	require.NotContains(t, out, "db01", "run-now runs and prints its task only")
	cmd("resume", "web01")
	require.Equal(t, 2, status()["web01"].BootPoints)

	require.Contains(t, cmd("testboot", "web01", "--network", "Isolated Network"), "chain is untouched")
	require.Contains(t, cmd("failover", "web01", "--point", "2", "--network", "Failover Network"), "running from boot point 2")

	cmd("delete", "db01", "--with-vm")
	require.NotContains(t, status(), "db01")
	host, err := esx.Connect(ctx, esx.Config{URL: sim.URL(), Insecure: true, Datastore: esxsim.Datastore})
	require.NoError(t, err)
	defer host.Close(ctx)
	_, err = host.FindVM(ctx, "db01-standby")
	require.Error(t, err)
	_, err = host.FindVM(ctx, "web01-standby")
	require.NoError(t, err, fmt.Sprint("web01 stays"))
}
