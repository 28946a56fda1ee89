package esx

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"

	"github.com/standbykit/standbykit/bootpoint"
)

// faultyTransport fails the upload of files whose name contains failName
// after failAfter bytes, and the failCall-th upload (1-based) outright.
type faultyTransport struct {
	Transport
	failName  string
	failAfter int64
	failCall  int64
	calls     atomic.Int64
}

var errInjected = errors.New("injected transport failure")

func (f *faultyTransport) Upload(ctx context.Context, ds *object.Datastore, p string, file bootpoint.File) error {
	n := f.calls.Add(1)
	if n == f.failCall {
		return errInjected
	}
	if f.failName != "" && strings.Contains(file.Name, f.failName) {
		open := file.Open
		file.Open = func() (io.ReadCloser, error) {
			r, err := open()
			if err != nil {
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{io.MultiReader(io.LimitReader(r, f.failAfter), errReader{}), r}, nil
		}
	}
	return f.Transport.Upload(ctx, ds, p, file)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errInjected }

// vmFiles lists the VM folder's files.
func vmFiles(t *testing.T, sim *Simulator) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(sim.Dir, "sb", "*"))
	require.NoError(t, err)
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	sort.Strings(m)
	return m
}

// backings are the disks' current backing chains.
func backings(t *testing.T, h *Host, vm bootpoint.VM) [][]string {
	t.Helper()
	s, err := h.load(context.Background(), vm)
	require.NoError(t, err)
	var out [][]string
	for _, d := range disks(s.mo.Config) {
		var chain []string
		for b := flat(d); b != nil; b = b.Parent {
			chain = append(chain, b.FileName)
		}
		out = append(out, chain)
	}
	return out
}

func TestAddBootPointFailures(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, _ := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})
	_, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	s1 := addPoint(t, h, vm, 1)

	snaps, err := h.Snapshots(ctx, vm)
	require.NoError(t, err)
	files, chains := vmFiles(t, sim), backings(t, h, vm)
	unchanged := func() {
		t.Helper()
		now, err := h.Snapshots(ctx, vm)
		require.NoError(t, err)
		require.Equal(t, snaps, now)
		require.Equal(t, chains, backings(t, h, vm))
		require.Equal(t, files, vmFiles(t, sim))
	}

	// The extent of disk 1 breaks half-way: disk 0's files were uploaded.
	ft := &faultyTransport{Transport: DatastoreHTTP{}, failName: "sb_1-000002-delta", failAfter: 2000}
	h.Transport = ft
	dd, _ := nextDeltas(t, h, vm, 2)
	_, err = h.AddBootPoint(ctx, vm, dd, "bootpoint 0002", "p2")
	require.ErrorIs(t, err, errInjected)
	require.EqualValues(t, 3, ft.calls.Load())
	unchanged()

	// The descriptor of disk 0 fails outright.
	ft = &faultyTransport{Transport: DatastoreHTTP{}, failCall: 2}
	h.Transport = ft
	_, err = h.AddBootPoint(ctx, vm, dd, "bootpoint 0002", "p2")
	require.ErrorIs(t, err, errInjected)
	unchanged()

	// The snapshot fails: the disks were already on the new deltas.
	h.Transport = nil
	sim.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: "CreateSnapshot_Task", ObjectType: "*", ObjectName: "*",
		Probability: 1, FaultType: simulator.FaultTypeInvalidState, Message: "injected snapshot failure",
		MaxCount: 1, Enabled: true,
	})
	_, err = h.AddBootPoint(ctx, vm, dd, "bootpoint 0002", "p2")
	require.ErrorContains(t, err, "injected snapshot failure")
	unchanged()

	// A reconfigure failure.
	sim.Service.ClearFaultRules()
	sim.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: "ReconfigVM_Task", ObjectType: "*", ObjectName: "*",
		Probability: 1, FaultType: simulator.FaultTypeGeneric, Message: "injected reconfigure failure",
		MaxCount: 1, Enabled: true,
	})
	_, err = h.AddBootPoint(ctx, vm, dd, "bootpoint 0002", "p2")
	require.ErrorContains(t, err, "injected reconfigure failure")
	unchanged()
	sim.Service.ClearFaultRules()

	// The retry with a healthy transport succeeds.
	s2, err := h.AddBootPoint(ctx, vm, dd, "bootpoint 0002", "p2")
	require.NoError(t, err)
	now, err := h.Snapshots(ctx, vm)
	require.NoError(t, err)
	require.Equal(t, append(snaps, s2), now)
	chain, err := h.DiskChain(ctx, vm, s2, 1)
	require.NoError(t, err)
	names, _ := readChain(t, chain)
	require.Equal(t, []string{"sb_1-000002.vmdk", "sb_1-000002-delta.vmdk", "sb_1-000001.vmdk", "sb_1-000001-delta.vmdk", "sb_1.vmdk"}, names)
	_ = s1
}

// addPoint adds boot point k with fake deltas on both disks.
func addPoint(t *testing.T, h *Host, vm bootpoint.VM, k int) bootpoint.Snapshot {
	t.Helper()
	dd, _ := nextDeltas(t, h, vm, k)
	s, err := h.AddBootPoint(context.Background(), vm, dd, bootpoint.SnapshotName(k, time.Now()), "p")
	require.NoError(t, err)
	return s
}

func TestLostSession(t *testing.T) {
	_, h := startHost(t)
	ctx := context.Background()
	vm, _ := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})

	// Log the session out behind the Host's back.
	require.NoError(t, session.NewManager(h.Client).Logout(ctx))
	_, err := h.FindVM(ctx, "sb")
	require.NoError(t, err)

	require.NoError(t, session.NewManager(h.Client).Logout(ctx))
	_, err = h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)

	// Uploads right after a lost session work too (AddBootPoint's first
	// calls log in again).
	require.NoError(t, session.NewManager(h.Client).Logout(ctx))
	s := addPoint(t, h, vm, 1)
	require.NotEmpty(t, s.ID)

	// A lost session seen by a task method (not a property read).
	require.NoError(t, session.NewManager(h.Client).Logout(ctx))
	require.NoError(t, h.Revert(ctx, vm, s))
}
