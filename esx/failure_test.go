package esx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
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

func (f *faultyTransport) Upload(ctx context.Context, ds *object.Datastore, p string, file File) error {
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

// backings are the disks' current backing chains.
func backings(t *testing.T, h *Host, vm bootpoint.VM) [][]string {
	t.Helper()
	s, err := h.load(context.Background(), vm)
	require.NoError(t, err)
	var out [][]string
	for _, d := range vmdisks.Of(s.mo.Config) {
		var chain []string
		for b := vmdisks.Flat(d); b != nil; b = b.Parent {
			chain = append(chain, b.FileName)
		}
		out = append(out, chain)
	}
	return out
}

func TestAddBootPointFailures(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, cur := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})
	s0, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	s1, cur := addPoint(t, h, vm, 1, cur)
	snaps, err := h.Snapshots(ctx, vm)
	require.NoError(t, err)
	// After a failure: the same boot points, each still reading right,
	// the VM on an empty leaf on top of boot point 1, no stray file.
	unchanged := func() {
		t.Helper()
		now, err := h.Snapshots(ctx, vm)
		require.NoError(t, err)
		require.Equal(t, snaps, now)
		for d := range cur {
			require.True(t, bytes.Equal(cur[d], readDisk(t, h, vm, s1, d)))
		}
		_, _ = s0, sim
		for d, chain := range backings(t, h, vm) {
			require.Len(t, chain, 3, "disk %d", d)
		}
		requireNoStrayFiles(t, sim)
		h.Transport = nil
		_, err = h.planLeafWrites(ctx, mustLoad(t, h, vm), changesOf(cur))
		require.NoError(t, err, "the leaf is empty again")
	}
	changes, next := nextChanges(2, cur)

	// The extent of disk 1 breaks half-way: disk 0's files were uploaded.
	ft := &faultyTransport{Transport: DatastoreHTTP{}, failName: "sb_1-000002-delta", failAfter: 2000}
	h.Transport = ft
	_, err = h.AddBootPoint(ctx, vm, changes, "bootpoint 0002", "p2")
	require.ErrorIs(t, err, errInjected)
	require.EqualValues(t, 4, ft.calls.Load())
	unchanged()

	// The extent of disk 0 fails outright (its descriptor was written).
	h.Transport = &faultyTransport{Transport: DatastoreHTTP{}, failCall: 2}
	_, err = h.AddBootPoint(ctx, vm, changes, "bootpoint 0002", "p2")
	require.ErrorIs(t, err, errInjected)
	unchanged()

	// The snapshot fails: the leaves were already written.
	sim.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: "CreateSnapshot_Task", ObjectType: "*", ObjectName: "*",
		Probability: 1, FaultType: simulator.FaultTypeInvalidState, Message: "injected snapshot failure",
		MaxCount: 1, Enabled: true,
	})
	_, err = h.AddBootPoint(ctx, vm, changes, "bootpoint 0002", "p2")
	require.ErrorContains(t, err, "injected snapshot failure")
	sim.Service.ClearFaultRules()
	unchanged()

	// The retry with a healthy transport succeeds.
	s2, err := h.AddBootPoint(ctx, vm, changes, "bootpoint 0002", "p2")
	require.NoError(t, err)
	now, err := h.Snapshots(ctx, vm)
	require.NoError(t, err)
	require.Len(t, now, 3)
	require.Equal(t, s2.ID, now[2].ID)
	for d := range next {
		require.True(t, bytes.Equal(next[d], readDisk(t, h, vm, s2, d)))
	}
	require.Equal(t, []string{"[datastore1] sb/sb_1-000003.vmdk", "[datastore1] sb/sb_1-000002.vmdk", "[datastore1] sb/sb_1-000001.vmdk", "[datastore1] sb/sb_1.vmdk"}, backings(t, h, vm)[1])
}

func mustLoad(t *testing.T, h *Host, vm bootpoint.VM) *vmState {
	t.Helper()
	s, err := h.load(context.Background(), vm)
	require.NoError(t, err)
	return s
}

// changesOf is a change of one sector of every disk.
func changesOf(cur [][]byte) []bootpoint.Delta {
	var out []bootpoint.Delta
	for d, b := range cur {
		out = append(out, bootpoint.Delta{Disk: d, Size: int64(len(b)), Extents: []aipimage.Extent{{Off: 0, Len: 512}}, Source: bytes.NewReader(b)})
	}
	return out
}

func TestLostSession(t *testing.T) {
	_, h := startHost(t)
	ctx := context.Background()
	vm, cur := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})

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
	s, _ := addPoint(t, h, vm, 1, cur)
	require.NotEmpty(t, s.ID)

	// A lost session seen by a task method (not a property read).
	require.NoError(t, session.NewManager(h.Client).Logout(ctx))
	require.NoError(t, h.Revert(ctx, vm, s))
}
