package esx_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/sample"
)

// The crash test runs the manager in a child process (this test binary,
// running TestCrashChild) against a simulator in the parent, kills it
// with SIGKILL at a random step, runs it again to the end, and checks that
// the VM and the state are consistent: no half boot point, every boot
// point equal to its image point, the state agreeing with the host.

const (
	crashPoints   = 6 // points of the image set, arriving one per pass
	crashMaxBoots = 3 // a low cap, so that consolidation is interrupted too
	crashVM       = "crash-standby"
)

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs 20 child processes")
	}
	ctx := context.Background()
	source := t.TempDir()
	_, err := sample.Write(ctx, source, sample.Options{DiskSize: 2 << 20, Incrementals: crashPoints - 1, Seed: 21})
	require.NoError(t, err)

	// One clean run counts the steps a run goes through.
	steps := runChild(t, newCrashEnv(t, source), -1)
	require.Greater(t, steps, 2*crashPoints)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	const runs = 20
	for run := range runs {
		env := newCrashEnv(t, source)
		// Stratified: each run dies somewhere in its own twentieth of the
		// steps, so that creation, uploads, snapshots and consolidation
		// are all interrupted.
		killAt := 1 + run*steps/runs + r.IntN(max(steps/runs, 1))
		t.Logf("run %d: kill -9 at step %d of %d", run, killAt, steps)
		runChild(t, env, killAt)
		runChild(t, env, -1)
		env.check(t)
	}
}

type crashEnv struct {
	sim             *esxsim.Simulator
	source, images  string
	state, tempRoot string
}

func newCrashEnv(t *testing.T, source string) *crashEnv {
	sim, err := esxsim.Start(context.Background(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	return &crashEnv{sim: sim, source: source, images: t.TempDir(), state: filepath.Join(t.TempDir(), "state.json"), tempRoot: t.TempDir()}
}

// runChild runs the manager process to its end, or kills it with SIGKILL
// after killAt steps (-1: never). It returns the steps it saw.
func runChild(t *testing.T, env *crashEnv, killAt int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(),
		"STANDBYKIT_CRASH_CHILD=1",
		"GOVC_URL="+env.sim.URL(),
		"GOVC_INSECURE=1",
		"GOVC_DATASTORE="+esxsim.Datastore,
		esx.EnvApplianceImage+"="+esx.ApplianceImageNone,
		"STANDBYKIT_CRASH_SOURCE="+env.source,
		"STANDBYKIT_CRASH_IMAGES="+env.images,
		"STANDBYKIT_CRASH_STATE="+env.state,
		"TMPDIR="+env.tempRoot,
	)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	steps, done, killed := 0, false, false
	sc := bufio.NewScanner(stdout)
	var tail []string
	for sc.Scan() {
		line := sc.Text()
		tail = append(tail, line)
		if len(tail) > 20 {
			tail = tail[1:]
		}
		switch {
		case strings.HasPrefix(line, "STEP "):
			steps++
			if steps == killAt {
				require.NoError(t, cmd.Process.Kill()) // SIGKILL: no defer, no cleanup runs
				killed = true
			}
		case line == "DONE":
			done = true
		}
		if killed {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	if killed {
		return steps
	}
	require.NoError(t, err, "child failed:\n%s\n%s", strings.Join(tail, "\n"), stderr.String())
	require.True(t, done, "child ended without DONE:\n%s", strings.Join(tail, "\n"))
	return steps
}

// check asserts the end state of a run: consistent VM and state.
func (env *crashEnv) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	host, err := esx.Connect(ctx, esx.Config{URL: env.sim.URL(), Insecure: true, Datastore: esxsim.Datastore})
	require.NoError(t, err)
	defer host.Close(ctx)
	set, err := aipimage.OpenDir(env.images, nil)
	require.NoError(t, err)
	defer set.Close()
	require.Len(t, set.Points(), crashPoints)

	host.TempDir = t.TempDir()
	sb := &bootpoint.Standby{Hypervisor: host, VM: bootpoint.VMSpec{Name: crashVM}}
	vm, bps, err := sb.BootPoints(ctx)
	require.NoError(t, err)
	snaps, err := host.Snapshots(ctx, vm)
	require.NoError(t, err)
	require.Len(t, snaps, len(bps), "every snapshot is a whole boot point")
	require.NotEmpty(t, bps)
	require.LessOrEqual(t, len(bps), crashMaxBoots)
	require.Equal(t, crashPoints-1, bps[len(bps)-1].Meta.Sequence, "the newest point has its boot point")
	for i, bp := range bps {
		if i > 0 {
			require.Greater(t, bp.Meta.Sequence, bps[i-1].Meta.Sequence)
		}
		require.NoError(t, sb.Verify(ctx, set, bp), "boot point %d", bp.Meta.Sequence)
	}

	// The VM runs on an empty leaf on top of the newest boot point, and no
	// interrupted upload or consolidation left a disk file behind.
	require.True(t, snaps[len(snaps)-1].Current)
	unused, err := env.sim.UnusedDiskFiles()
	require.NoError(t, err)
	require.Empty(t, unused, "disk files no chain uses")

	st, err := bootpoint.LoadState(env.state)
	require.NoError(t, err)
	ts := st.Tasks["crash"]
	require.NotNil(t, ts)
	require.Equal(t, crashPoints-1, ts.LastSequence)
	require.Equal(t, len(bps), ts.BootPoints)
	require.Empty(t, ts.LastError)
}

// TestCrashChild is the manager process of TestCrashRecovery; it does
// nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	if os.Getenv("STANDBYKIT_CRASH_CHILD") != "1" {
		t.Skip("runs as the child of TestCrashRecovery")
	}
	ctx := context.Background()
	step := func(format string, args ...any) { fmt.Printf("STEP "+format+"\n", args...) }
	cfg, err := esx.ConfigFromEnv(os.Getenv)
	require.NoError(t, err)
	host, err := esx.Connect(ctx, cfg)
	require.NoError(t, err)
	host.Transport = stepTransport{step: step}
	host.Appliance.Poll = 10 * time.Millisecond
	// Every step esx logs is a place to die at too: inside the writer
	// appliance's sequence (payload imported, disks attached, appliance
	// run, report read).
	host.Logger = slog.New(stepHandler{step: step})
	m := &bootpoint.Manager{StatePath: os.Getenv("STANDBYKIT_CRASH_STATE"), Tasks: []*bootpoint.Task{{
		Name: "crash", Images: os.Getenv("STANDBYKIT_CRASH_IMAGES"), Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
		Standby: &bootpoint.Standby{Hypervisor: stepHost{Host: host, step: step},
			VM: bootpoint.VMSpec{Name: crashVM}, MaxBootPoints: crashMaxBoots,
			Progress: func(e bootpoint.Event) { step("point %d %s", e.Sequence, e.Step) }},
	}}}
	source, images := os.Getenv("STANDBYKIT_CRASH_SOURCE"), os.Getenv("STANDBYKIT_CRASH_IMAGES")
	files, err := filepath.Glob(filepath.Join(source, "*.skimg"))
	require.NoError(t, err)
	slices.Sort(files) // names start with the sequence number
	require.Len(t, files, crashPoints)
	for i := range files {
		// The next image arrives (a hard link appears whole), then a pass.
		dst := filepath.Join(images, filepath.Base(files[i]))
		if err := os.Link(files[i], dst); err != nil && !errors.Is(err, os.ErrExist) {
			require.NoError(t, err)
		}
		res, err := m.Tick(ctx)
		require.NoError(t, err)
		for _, r := range res {
			require.NoError(t, r.Err)
		}
		step("tick %d", i)
	}
	fmt.Println("DONE")
}

// stepHandler announces each message logged.
type stepHandler struct{ step func(string, ...any) }

func (h stepHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h stepHandler) Handle(_ context.Context, r slog.Record) error {
	h.step("log %s", r.Message)
	return nil
}
func (h stepHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h stepHandler) WithGroup(string) slog.Handler      { return h }

// stepHost announces each change it makes to the VM.
type stepHost struct {
	*esx.Host
	step func(string, ...any)
}

func (h stepHost) CreateStandby(ctx context.Context, spec bootpoint.VMSpec, bases []bootpoint.Delta) (bootpoint.VM, error) {
	h.step("create")
	return h.Host.CreateStandby(ctx, spec, bases)
}

func (h stepHost) AddBootPoint(ctx context.Context, vm bootpoint.VM, deltas []bootpoint.Delta, name, desc string) (bootpoint.Snapshot, error) {
	h.step("add %s", name)
	s, err := h.Host.AddBootPoint(ctx, vm, deltas, name, desc)
	h.step("added %s", name)
	return s, err
}

func (h stepHost) RemoveSnapshot(ctx context.Context, vm bootpoint.VM, s bootpoint.Snapshot) error {
	h.step("remove %s", s.Name)
	return h.Host.RemoveSnapshot(ctx, vm, s)
}

// stepTransport announces uploads, also half-way through each file.
type stepTransport struct {
	esx.DatastoreHTTP
	step func(string, ...any)
}

func (s stepTransport) Upload(ctx context.Context, ds *object.Datastore, p string, f esx.File) error {
	s.step("upload %s", p)
	open := f.Open
	f.Open = func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		return &halfway{ReadCloser: rc, size: f.Size, at: func() { s.step("half of %s", p) }}, nil
	}
	return s.DatastoreHTTP.Upload(ctx, ds, p, f)
}

type halfway struct {
	io.ReadCloser
	size, n int64
	once    atomic.Bool
	at      func()
}

func (h *halfway) Read(p []byte) (int, error) {
	if h.size > 0 {
		p = p[:min(int64(len(p)), max(h.size/2-h.n, 1))] // stop at the middle once
	}
	n, err := h.ReadCloser.Read(p)
	h.n += int64(n)
	if h.size > 0 && h.n >= h.size/2 && !h.once.Swap(true) {
		h.at()
	}
	return n, err
}
