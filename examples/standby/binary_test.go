package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/cli/clitest"
	"github.com/standbykit/standbykit/internal/sample"
	"github.com/standbykit/standbykit/p2v"
)

// These tests run the standby program as an operator does: built with go
// build, as a separate process, against a simulator that outlives it.

func TestMain(m *testing.M) {
	code := m.Run()
	clitest.Cleanup()
	os.Exit(code)
}

func standbyBinary(t *testing.T) string { return clitest.Build(t, ".") }

type result = clitest.Result

// runStandby runs the program with env added to the test's environment.
func runStandby(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return clitest.Run(t, standbyBinary(t), env, args...)
}

func TestBinaryHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		r := runStandby(t, nil, args...)
		require.Equal(t, 0, r.Code, "%v: %s", args, r.Stderr)
		require.Contains(t, r.Stdout, "usage: standby COMMAND")
		require.Contains(t, r.Stdout, "run-now TASK")
		require.Empty(t, r.Stderr)
	}
	for _, args := range [][]string{{"status", "-h"}, {"help", "status"}, {"status", "--help"}} {
		r := runStandby(t, nil, args...)
		require.Equal(t, 0, r.Code, "%v", args)
		require.Contains(t, r.Stdout, "usage: standby status [flags]")
		require.Contains(t, r.Stdout, "--json")
		require.Contains(t, r.Stdout, "--config")
		for _, other := range []string{"--watch", "--with-vm", "--point", "--network", "--datastore-dir"} {
			require.NotContains(t, r.Stdout, other, "status -h lists only its own flags")
		}
	}
	r := runStandby(t, nil, "failover", "web01", "--help")
	require.Equal(t, 0, r.Code)
	require.Contains(t, r.Stdout, "usage: standby failover [flags] TASK")
	require.Contains(t, r.Stdout, "--point")
	require.NotContains(t, r.Stdout, "--json")

	r = runStandby(t, nil, "bogus")
	require.Equal(t, 2, r.Code)
	require.Equal(t, "standby: unknown command \"bogus\" (run \"standby help\" for the list)\n", r.Stderr)
	r = runStandby(t, nil)
	require.Equal(t, 2, r.Code)
	r = runStandby(t, nil, "status", "--bogus")
	require.Equal(t, 2, r.Code)
	require.Contains(t, r.Stderr, "standby: status: flag provided but not defined: -bogus\nrun \"standby status -h\" for its usage")
	r = runStandby(t, nil, "pause", "--config", "x.json")
	require.Equal(t, 2, r.Code)

	missing := filepath.Join(t.TempDir(), "standby.json")
	r = runStandby(t, nil, "status", "--config", missing)
	require.Equal(t, 1, r.Code)
	require.Equal(t, "standby: configuration: open "+missing+": no such file or directory\n", r.Stderr)

	config := filepath.Join(t.TempDir(), "standby.json")
	require.NoError(t, os.WriteFile(config, []byte("{\"tasks\": [{\"name\": \"a\", \"images\": \"a\",\n \"vm\": {\"memoryMB\": 4096}}]}"), 0o644))
	r = runStandby(t, nil, "status", "--config", config)
	require.Equal(t, 1, r.Code)
	require.Equal(t, "standby: "+config+":2: unknown field \"memoryMB\" in tasks[0].vm (did you mean \"memoryMiB\"?)\n", r.Stderr)
}

// simEnv starts a simulator for the program to reach through GOVC_URL.
func simEnv(t *testing.T) (*esxsim.Simulator, []string) {
	t.Helper()
	sim, err := esxsim.Start(context.Background(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	return sim, []string{"GOVC_URL=" + sim.URL(), "GOVC_INSECURE=true", "GOVC_DATASTORE=" + esxsim.Datastore,
		esx.EnvApplianceImage + "=" + esx.ApplianceImageNone}
}

// useSim starts a simulator and points this process's environment at it,
// for tests that run the commands in process.
func useSim(t *testing.T) *esxsim.Simulator {
	t.Helper()
	sim, env := simEnv(t)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return sim
}

func writeConfig(t *testing.T, path, doc string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
}

func statusJSON(t *testing.T, env []string, config string) (map[string]statusRow, int) {
	t.Helper()
	r := runStandby(t, env, "status", "--config", config, "--json")
	var rows []statusRow
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &rows), r.Stdout+r.Stderr)
	m := map[string]statusRow{}
	for _, row := range rows {
		m[row.Task] = row
	}
	return m, r.Code
}

// A daily task whose run fails is FAILING (status exits 3, sync 1), and
// is tried again at the next pass after its retry delay, not at its next
// slot; run-now runs only the task it names; NEXT RUN is the next slot.
func TestBinaryRetriesRunNowAndNextRun(t *testing.T) {
	_, env := simEnv(t)
	dir := t.TempDir()
	ctx := context.Background()
	for i, name := range []string{"web01", "db01"} {
		_, err := sample.Write(ctx, filepath.Join(dir, name), sample.Options{DiskSize: 4 << 20, Incrementals: 1, Seed: uint64(i)})
		require.NoError(t, err)
	}
	slot := time.Now().Add(-2 * time.Hour).Format("15:04") // today's slot has passed
	config := filepath.Join(dir, "standby.json")
	doc := `{"retryDelay": "2s", "tasks": [
		{"name": "web01", "images": "web01", "trigger": "daily@` + slot + `", "vm": {"network": "%s"}},
		{"name": "db01", "images": "db01", "trigger": "immediately"}]}`

	// run-now runs db01 only, and prints it only.
	writeConfig(t, config, fmt.Sprintf(doc, "No Such Network"))
	r := runStandby(t, env, "run-now", "db01", "--config", config)
	require.Equal(t, 0, r.Code, r.Stderr)
	require.Contains(t, r.Stdout, "db01: 1 boot point(s) made")
	require.NotContains(t, r.Stdout, "web01")
	st, code := statusJSON(t, env, config)
	require.Equal(t, 0, code)
	require.Equal(t, "new", st["web01"].State, "run-now db01 did not run web01")
	require.Equal(t, "ok", st["db01"].State)

	// web01 fails: its network does not exist.
	r = runStandby(t, env, "sync", "--config", config)
	require.Equal(t, 1, r.Code, r.Stdout+r.Stderr)
	require.Contains(t, r.Stdout, "web01: FAILED: ")
	require.Contains(t, r.Stdout, "No Such Network")
	require.Contains(t, r.Stdout, "; next try at ")
	require.Contains(t, r.Stderr, "standby: 1 of 2 tasks failing")
	st, code = statusJSON(t, env, config)
	require.Equal(t, 3, code, "status exits 3 when a task is failing")
	w := st["web01"]
	require.Equal(t, "failing", w.State)
	require.True(t, w.Attention)
	require.Equal(t, 1, w.Failures)
	require.True(t, w.LastSuccess.IsZero(), "a failed run is not a success")
	require.False(t, w.LastAttempt.IsZero())
	require.Contains(t, w.LastError, "No Such Network")
	require.Equal(t, w.LastFailure.Add(2*time.Second), w.NextRetry)
	require.Equal(t, w.NextRetry, w.NextRun)
	r = runStandby(t, env, "status", "--config", config)
	require.Equal(t, 3, r.Code)
	require.Regexp(t, `web01 +web01-standby +FAILING .* retry `, r.Stdout)

	// Fixed, and tried again at the next pass once the delay is over,
	// although the day's slot is long past.
	writeConfig(t, config, fmt.Sprintf(doc, "VM Network"))
	r = runStandby(t, env, "sync", "--config", config)
	require.Equal(t, 1, r.Code, "still waiting for its retry: %s", r.Stdout)
	require.Contains(t, r.Stdout, "web01: failing (")
	time.Sleep(time.Until(w.NextRetry))
	r = runStandby(t, env, "sync", "--config", config)
	require.Equal(t, 0, r.Code, r.Stdout+r.Stderr)
	require.Contains(t, r.Stdout, "web01: 1 boot point(s) made")
	st, code = statusJSON(t, env, config)
	require.Equal(t, 0, code)
	w = st["web01"]
	require.Equal(t, "ok", w.State)
	require.Zero(t, w.Failures)
	require.Empty(t, w.LastError)
	require.False(t, w.LastSuccess.IsZero())
	require.Greater(t, w.LastDurationSeconds, 0.0)
	require.Less(t, w.LastDurationSeconds, 600.0, "seconds, not nanoseconds")

	// NEXT RUN: the next slot, after now and within a day, at the slot's
	// time of day; not a date in year 1 nor one in the past.
	now := time.Now()
	require.True(t, w.NextRun.After(now), "next run %v", w.NextRun)
	require.True(t, w.NextRun.Before(now.Add(24*time.Hour)), "next run %v", w.NextRun)
	require.Equal(t, slot, w.NextRun.Local().Format("15:04"))
	r = runStandby(t, env, "status", "--config", config)
	require.Equal(t, 0, r.Code)
	require.Contains(t, r.Stdout, w.NextRun.Local().Format("01-02 15:04"))
	require.Contains(t, r.Stdout, "on a new point", "db01, immediately, is up to date")
}

// SIGTERM (what systemctl stop sends) during sync --watch: the boot point
// being written is undone, the state says "interrupted" with no internal
// URL, the program exits 143, and the next sync makes the boot point.
// SIGINT while idle exits 130 with the state untouched.
func TestBinarySignals(t *testing.T) {
	sim, env := simEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	images := filepath.Join(dir, "web01")
	_, err := sample.Write(ctx, images, sample.Options{DiskSize: 4 << 20, Incrementals: 1, Seed: 4})
	require.NoError(t, err)
	config := filepath.Join(dir, "standby.json")
	writeConfig(t, config, `{"tasks": [{"name": "web01", "images": "web01", "trigger": "immediately", "vm": {"network": "VM Network"}}]}`)
	r := runStandby(t, env, "sync", "--config", config)
	require.Equal(t, 0, r.Code, r.Stdout+r.Stderr)

	// The appliance writing the next boot point hangs: SIGTERM arrives
	// while the boot point is being written.
	_, err = sample.Extend(ctx, images, 1, 5, nil)
	require.NoError(t, err)
	sim.SetApplianceFault(esxsim.ApplianceHangs)
	host := connectSim(t, sim)
	applianceRunning := func() bool {
		return powerState(t, host, "standbykit-writer") == types.VirtualMachinePowerStatePoweredOn
	}
	code, out, stderr := signalDuringWatch(t, env, config, "web01: point 2: making its boot point", applianceRunning, syscall.SIGTERM)
	require.Equal(t, 143, code, out+stderr)
	require.Contains(t, out, "web01: interrupted")
	require.Contains(t, stderr, "standby: stopped by SIGTERM")

	state, err := os.ReadFile(filepath.Join(dir, "standby-state.json"))
	require.NoError(t, err)
	require.NotContains(t, string(state), "https:", "no internal URL in the state")
	st, code := statusJSON(t, env, config)
	require.Equal(t, 0, code, "interrupted needs no operator")
	require.Equal(t, "interrupted", st["web01"].State)
	require.Empty(t, st["web01"].LastError)
	require.Equal(t, 1, st["web01"].BootPoints)
	require.Equal(t, types.VirtualMachinePowerStatePoweredOff, powerState(t, host, "standbykit-writer"))
	require.Equal(t, []string{"standbykit-writer", "web01-standby"}, vmNames(t, host), "no payload VM left")
	unused, err := sim.UnusedDiskFiles()
	require.NoError(t, err)
	require.Empty(t, unused)

	r = runStandby(t, env, "sync", "--config", config)
	require.Equal(t, 0, r.Code, r.Stdout+r.Stderr)
	require.Contains(t, r.Stdout, "web01: 1 boot point(s) made")
	st, _ = statusJSON(t, env, config)
	require.Equal(t, "ok", st["web01"].State)
	verifyBootPoints(t, host, images, "web01-standby", 2)

	// SIGINT while sync --watch waits for its next pass.
	code, out, stderr = signalDuringWatch(t, env, config, "web01: up to date", nil, os.Interrupt)
	require.Equal(t, 130, code, out+stderr)
	require.Contains(t, stderr, "standby: stopped by SIGINT")
	st, _ = statusJSON(t, env, config)
	require.Equal(t, "ok", st["web01"].State)
}

// A SIGTERM while the standby VM is being created and its base imported
// leaves either no VM or a complete first boot point, whenever it lands;
// the next sync finishes the job.
func TestBinarySIGTERMDuringCreation(t *testing.T) {
	if testing.Short() {
		t.Skip("imports a 64 MiB disk to have time to interrupt it")
	}
	sim, env := simEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	images := filepath.Join(dir, "web01")
	_, err := sample.Write(ctx, images, sample.Options{DiskSize: 64 << 20, Incrementals: 1, Seed: 6})
	require.NoError(t, err)
	config := filepath.Join(dir, "standby.json")
	writeConfig(t, config, `{"tasks": [{"name": "web01", "images": "web01"}]}`)
	code, out, stderr := signalDuringWatch(t, env, config, "web01: point 1: making its boot point", nil, syscall.SIGTERM)
	require.Equal(t, 143, code, out+stderr)
	host := connectSim(t, sim)
	st, _ := statusJSON(t, env, config)
	switch st["web01"].State {
	case "interrupted":
		_, err := host.FindVM(ctx, "web01-standby")
		require.ErrorIs(t, err, bootpoint.ErrNotFound, "no half-imported VM")
	case "ok":
		t.Log("the creation finished before the signal")
	default:
		t.Fatalf("state %q", st["web01"].State)
	}
	unused, err := sim.UnusedDiskFiles()
	require.NoError(t, err)
	require.Empty(t, unused)
	r := runStandby(t, env, "sync", "--config", config)
	require.Equal(t, 0, r.Code, r.Stdout+r.Stderr)
	verifyBootPoints(t, host, images, "web01-standby", 1)
}

// signalDuringWatch starts sync --watch, sends sig once its output has a
// line starting with after and ready (if not nil) holds, and returns its
// exit status and output.
func signalDuringWatch(t *testing.T, env []string, config, after string, ready func() bool, sig os.Signal) (int, string, string) {
	t.Helper()
	cmd := exec.Command(standbyBinary(t), "sync", "--watch", "1h", "--config", config)
	cmd.Env = append(os.Environ(), env...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var out strings.Builder
	seen := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), after) {
				once.Do(func() { close(seen) })
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		t.Fatalf("no %q in the output:\n%s\n%s", after, out.String(), errOut.String())
	}
	for deadline := time.Now().Add(time.Minute); ready != nil && !ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("not ready a minute after %q", after)
		}
	}
	if ready == nil {
		time.Sleep(200 * time.Millisecond) // into the step
	}
	require.NoError(t, cmd.Process.Signal(sig))
	<-done
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

func connectSim(t *testing.T, sim *esxsim.Simulator) *esx.Host {
	t.Helper()
	host, err := esx.Connect(context.Background(), esx.Config{URL: sim.URL(), Insecure: true, Datastore: esxsim.Datastore})
	require.NoError(t, err)
	t.Cleanup(func() { host.Close(context.Background()) })
	return host
}

func powerState(t *testing.T, host *esx.Host, name string) types.VirtualMachinePowerState {
	t.Helper()
	ctx := context.Background()
	v, err := view.NewManager(host.Client).CreateContainerView(ctx, host.Client.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	require.NoError(t, err)
	defer v.Destroy(ctx)
	var vms []mo.VirtualMachine
	require.NoError(t, v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "runtime.powerState"}, &vms))
	for _, vm := range vms {
		if vm.Name == name {
			return vm.Runtime.PowerState
		}
	}
	return "" // no such VM (yet)
}

func vmNames(t *testing.T, host *esx.Host) []string {
	t.Helper()
	ctx := context.Background()
	v, err := view.NewManager(host.Client).CreateContainerView(ctx, host.Client.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	require.NoError(t, err)
	defer v.Destroy(ctx)
	var vms []mo.VirtualMachine
	require.NoError(t, v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &vms))
	var names []string
	for _, vm := range vms {
		names = append(names, vm.Name)
	}
	slices.Sort(names)
	return names
}

// verifyBootPoints reads every boot point back from the host and compares
// it with its image point.
func verifyBootPoints(t *testing.T, host *esx.Host, images, vm string, want int) {
	t.Helper()
	ctx := context.Background()
	set, err := aipimage.OpenDir(images, nil)
	require.NoError(t, err)
	defer set.Close()
	sb := &bootpoint.Standby{Hypervisor: host, Inspector: p2v.Inspector{}, VM: bootpoint.VMSpec{Name: vm}}
	_, bps, err := sb.BootPoints(ctx)
	require.NoError(t, err)
	require.Len(t, bps, want)
	for _, bp := range bps {
		require.NoError(t, sb.Verify(ctx, set, bp), "boot point %d", bp.Meta.Sequence)
	}
}

// An image recorded as EFI whose disk does not show its firmware (no
// partition table) gets an EFI VM: the vocabulary is bios/efi in every
// program, and an unknown value is refused.
func TestBinaryFirmwareFromTheImageRecord(t *testing.T) {
	aipimageBin := clitest.Build(t, "../aipimage")
	p2vinspectBin := clitest.Build(t, "../p2vinspect")
	sim, env := simEnv(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk0.raw")
	disk := make([]byte, 4<<20)
	copy(disk[1<<20:], "no partition table here, just data")
	require.NoError(t, os.WriteFile(raw, disk, 0o644))
	set := filepath.Join(dir, "set")

	r := clitest.Run(t, aipimageBin, nil, "create", "--out", set, "--host", "fw01", "--firmware", "uefi", raw)
	require.Equal(t, 2, r.Code)
	require.Contains(t, r.Stderr, `aipimage: create: --firmware "uefi": want bios or efi`)
	r = clitest.Run(t, aipimageBin, nil, "create", raw, "--out", set, "--host", "fw01", "--firmware", "efi")
	require.Equal(t, 0, r.Code, r.Stderr)
	r = clitest.Run(t, aipimageBin, nil, "info", set)
	require.Equal(t, 0, r.Code, r.Stderr)
	require.Contains(t, r.Stdout, "firmware efi")

	r = clitest.Run(t, p2vinspectBin, nil, "--images", set)
	require.Equal(t, 0, r.Code, r.Stderr)
	require.Contains(t, r.Stdout, "firmware:   efi")
	require.Contains(t, r.Stdout, "as the image set records")

	r = runStandby(t, env, "run", "--images", set, "--vm", "fw01-standby")
	require.Equal(t, 0, r.Code, r.Stdout+r.Stderr)
	host := connectSim(t, sim)
	ctx := context.Background()
	v, err := view.NewManager(host.Client).CreateContainerView(ctx, host.Client.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	require.NoError(t, err)
	defer v.Destroy(ctx)
	var vms []mo.VirtualMachine
	require.NoError(t, v.RetrieveWithFilter(ctx, []string{"VirtualMachine"}, []string{"name", "config.firmware"}, &vms, property.Match{"name": "fw01-standby"}))
	require.Len(t, vms, 1)
	require.Equal(t, "efi", vms[0].Config.Firmware)
}

// A host whose certificate is not trusted: the error gives the
// thumbprint and how to trust it, and doing what it says works.
func TestBinaryUntrustedCertificate(t *testing.T) {
	sim, _ := simEnv(t)
	back, err := url.Parse(sim.URL())
	require.NoError(t, err)
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: back.Scheme, Host: back.Host}))
	front.Config.ErrorLog = log.New(io.Discard, "", 0)
	front.StartTLS()
	defer front.Close()
	u, err := url.Parse(front.URL + "/sdk")
	require.NoError(t, err)
	u.User = back.User

	dir := t.TempDir()
	config := filepath.Join(dir, "standby.json")
	writeConfig(t, config, `{"tasks": []}`)
	env := []string{"GOVC_URL=" + u.String(), "GOVC_INSECURE=", "GOVC_TLS_KNOWN_HOSTS=", "GOVC_DATASTORE=" + esxsim.Datastore,
		"HOME=" + dir}
	r := runStandby(t, env, "sync", "--config", config)
	require.Equal(t, 1, r.Code)
	require.Contains(t, r.Stderr, "standby: esx: the TLS certificate of "+u.Host+" is not trusted")
	require.Contains(t, r.Stderr, "GOVC_INSECURE=1")
	require.NotContains(t, r.Stderr, "standby: esx: connecting")
	echo := regexp.MustCompile(`mkdir -p ~/.govmomi && echo '([^']+)' >> ~/.govmomi/known_hosts\n  export GOVC_TLS_KNOWN_HOSTS=~/.govmomi/known_hosts`).FindStringSubmatch(r.Stderr)
	require.NotNil(t, echo, r.Stderr)

	known := filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(known, []byte(echo[1]+"\n"), 0o600))
	env = append(env, "GOVC_TLS_KNOWN_HOSTS="+known)
	r = runStandby(t, env, "sync", "--config", config)
	require.Equal(t, 0, r.Code, r.Stderr)
}

// The manager reads an encrypted set's passphrase from
// STANDBYKIT_PASSPHRASE, as `standby run` does, unless a task names
// another variable.
func TestBinaryPassphraseFromTheEnvironment(t *testing.T) {
	_, env := simEnv(t)
	dir := t.TempDir()
	for i, name := range []string{"web01", "db01"} {
		_, err := sample.Write(context.Background(), filepath.Join(dir, name), sample.Options{DiskSize: 2 << 20, Incrementals: 1, Seed: uint64(i), Passphrase: []byte("pass " + name)})
		require.NoError(t, err)
	}
	config := filepath.Join(dir, "standby.json")
	writeConfig(t, config, `{"tasks": [{"name": "web01", "images": "web01"}, {"name": "db01", "images": "db01", "passphraseEnv": "DB01_PASS"}]}`)

	r := runStandby(t, append(env, "STANDBYKIT_PASSPHRASE=", "DB01_PASS="), "sync", "--config", config)
	require.Equal(t, 1, r.Code)
	require.Contains(t, r.Stdout, "web01: FAILED: ")
	require.Contains(t, r.Stdout, "passphrase required")

	r = runStandby(t, append(env, "STANDBYKIT_PASSPHRASE=pass web01", "DB01_PASS=pass db01"), "run-now", "web01", "--config", config)
	require.Equal(t, 0, r.Code, r.Stdout+r.Stderr)
	r = runStandby(t, append(env, "STANDBYKIT_PASSPHRASE=pass web01", "DB01_PASS=pass db01"), "run-now", "db01", "--config", config)
	require.Equal(t, 0, r.Code, r.Stdout+r.Stderr)
	require.Contains(t, r.Stdout, "db01: 1 boot point(s) made")
}
