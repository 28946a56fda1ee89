package esx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/appliance"
	"github.com/standbykit/standbykit/esx/esxsim"
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

// failureEnv is a VM with two boot points and what a failed boot point
// must leave as it was.
type failureEnv struct {
	t      *testing.T
	sim    *esxsim.Simulator
	h      *Host
	vm     bootpoint.VM
	cur    [][]byte
	s1     bootpoint.Snapshot
	snaps  []bootpoint.Snapshot
	change []bootpoint.Delta
	next   [][]byte
}

func newFailureEnv(t *testing.T, writer Writer) *failureEnv {
	sim, h := startHost(t)
	h.Writer = writer
	ctx := context.Background()
	vm, c0 := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})
	_, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	s1, cur := addPoint(t, h, vm, 1, c0)
	snaps, err := h.Snapshots(ctx, vm)
	require.NoError(t, err)
	change, next := nextChanges(2, cur)
	return &failureEnv{t: t, sim: sim, h: h, vm: vm, cur: cur, s1: s1, snaps: snaps, change: change, next: next}
}

// add tries boot point 2.
func (e *failureEnv) add() (bootpoint.Snapshot, error) {
	return e.h.AddBootPoint(context.Background(), e.vm, e.change, "bootpoint 0002", "p2")
}

// unchanged checks what a failed boot point must leave: the same boot
// points, each still reading right, the VM on an empty leaf on top of
// boot point 1, no stray file, no writing mark.
func (e *failureEnv) unchanged() {
	t, h, ctx := e.t, e.h, context.Background()
	t.Helper()
	now, err := h.Snapshots(ctx, e.vm)
	require.NoError(t, err)
	require.Equal(t, e.snaps, now)
	for d := range e.cur {
		require.True(t, bytes.Equal(e.cur[d], readDisk(t, h, e.vm, e.s1, d)))
	}
	for d, chain := range backings(t, h, e.vm) {
		require.Len(t, chain, 3, "disk %d", d)
	}
	requireNoStrayFiles(t, e.sim)
	s := mustLoad(t, h, e.vm)
	require.Empty(t, writing(s))
	targets, err := h.checkLeaves(ctx, s, changesOf(e.cur))
	require.NoError(t, err)
	for _, tg := range targets {
		require.NoError(t, h.checkLeafEmpty(ctx, s, tg), "the leaf is empty again")
	}
}

// succeeds checks that boot point 2 goes in now.
func (e *failureEnv) succeeds() {
	t := e.t
	t.Helper()
	s2, err := e.add()
	require.NoError(t, err)
	now, err := e.h.Snapshots(context.Background(), e.vm)
	require.NoError(t, err)
	require.Len(t, now, 3)
	require.Equal(t, s2.ID, now[2].ID)
	for d := range e.next {
		require.True(t, bytes.Equal(e.next[d], readDisk(t, e.h, e.vm, s2, d)))
	}
	require.Equal(t, []string{"[datastore1] sb/sb_1-000003.vmdk", "[datastore1] sb/sb_1-000002.vmdk", "[datastore1] sb/sb_1-000001.vmdk", "[datastore1] sb/sb_1.vmdk"}, backings(t, e.h, e.vm)[1])
	requireNoStrayFiles(t, e.sim)
}

func TestUploadFailures(t *testing.T) {
	e := newFailureEnv(t, WriterUpload)

	// The extent of disk 1 breaks half-way: disk 0's files were uploaded.
	ft := &faultyTransport{Transport: DatastoreHTTP{}, failName: "sb_1-000002-delta", failAfter: 2000}
	e.h.Transport = ft
	_, err := e.add()
	require.ErrorIs(t, err, errInjected)
	require.EqualValues(t, 3, ft.calls.Load())
	e.h.Transport = nil
	e.unchanged()

	// The descriptor of disk 0 fails outright (its extent was written).
	e.h.Transport = &faultyTransport{Transport: DatastoreHTTP{}, failCall: 2}
	_, err = e.add()
	require.ErrorIs(t, err, errInjected)
	e.h.Transport = nil
	e.unchanged()

	// The snapshot fails: the leaves were already written.
	e.sim.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: "CreateSnapshot_Task", ObjectType: "*", ObjectName: "*",
		Probability: 1, FaultType: simulator.FaultTypeInvalidState, Message: "injected snapshot failure",
		MaxCount: 1, Enabled: true,
	})
	_, err = e.add()
	require.ErrorContains(t, err, "injected snapshot failure")
	e.sim.Service.ClearFaultRules()
	e.unchanged()
	e.succeeds()
}

// The writer appliance's failures: the payload import cut, the appliance
// timing out, damaging what it writes, or its report cut; each leaves the
// last boot point whole, and the next attempt succeeds.
func TestApplianceFailures(t *testing.T) {
	e := newFailureEnv(t, WriterAppliance)

	e.sim.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: "HttpNfcLeaseComplete", ObjectType: "*", ObjectName: "*",
		Probability: 1, FaultType: simulator.FaultTypeGeneric, Message: "injected import failure",
		MaxCount: 1, Enabled: true,
	})
	_, err := e.add()
	require.ErrorContains(t, err, "injected import failure")
	e.sim.Service.ClearFaultRules()
	e.unchanged()

	e.h.Appliance.Timeout = 300 * time.Millisecond
	e.sim.SetApplianceFault(esxsim.ApplianceHangs)
	_, err = e.add()
	require.ErrorIs(t, err, ErrApplianceTimeout)
	e.h.Appliance.Timeout = time.Minute
	e.unchanged()

	e.sim.SetApplianceFault(esxsim.ApplianceCorruptsWrites)
	_, err = e.add()
	require.ErrorContains(t, err, "read back")
	e.unchanged()

	e.sim.SetApplianceFault(esxsim.ApplianceBreaksReport)
	_, err = e.add()
	require.ErrorContains(t, err, "report")
	e.unchanged()

	// The appliance is left without disks, powered off, no payload VM.
	app, err := e.h.FindVM(context.Background(), defaultApplianceName)
	require.NoError(t, err)
	require.Empty(t, vmdisks.Of(mustLoad(t, e.h, app).mo.Config))
	_, err = e.h.FindVM(context.Background(), payloadVMPrefix+"x")
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
	e.succeeds()
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
		out = append(out, bootpoint.Delta{Disk: d, Size: int64(len(b)), Extents: []aipimage.Extent{{Off: 0, Len: 512}}, Source: bytes.NewReader(b), Base: bytes.NewReader(b)})
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

// The appliance is found by its notes: one of an older version is
// replaced, a foreign VM of its name is never touched.
func TestApplianceUpgradeAndForeignName(t *testing.T) {
	e := newFailureEnv(t, WriterAppliance)
	ctx := context.Background()
	app, err := e.h.FindVM(ctx, defaultApplianceName)
	require.NoError(t, err)
	s := mustLoad(t, e.h, app)
	task, err := s.obj.Reconfigure(ctx, types.VirtualMachineConfigSpec{Annotation: "StandbyKit writer appliance version 0. Old."})
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))

	e.succeeds()
	upgraded, err := e.h.FindVM(ctx, defaultApplianceName)
	require.NoError(t, err)
	require.NotEqual(t, app.ID, upgraded.ID, "redeployed")
	require.Equal(t, appliance.Annotation(), upgraded.Annotation)

	// Another host's VM of that name is not an appliance: refused.
	h2, err := Connect(ctx, simConfig(e.sim))
	require.NoError(t, err)
	defer h2.Close(ctx)
	h2.Appliance = ApplianceOptions{Name: "sb", WithoutBootImage: true}
	_, _, err = h2.acquireAppliance(ctx)
	require.ErrorContains(t, err, "not StandbyKit's writer appliance")
}

// Deployed with a boot image, the appliance gets it on a CD-ROM drive,
// uploaded into its folder.
func TestApplianceBootImage(t *testing.T) {
	sim, h := startHost(t)
	iso := bytes.Repeat([]byte("CD001"), 1000)
	h.Appliance = ApplianceOptions{Image: memFile("standbykit-writer.iso", iso), Poll: 10 * time.Millisecond}
	ctx := context.Background()
	app, release, err := h.acquireAppliance(ctx)
	require.NoError(t, err)
	release()
	cds := object.VirtualDeviceList(app.mo.Config.Hardware.Device).SelectByType((*types.VirtualCdrom)(nil))
	require.Len(t, cds, 1)
	b, ok := cds[0].GetVirtualDevice().Backing.(*types.VirtualCdromIsoBackingInfo)
	require.True(t, ok, "%T", cds[0].GetVirtualDevice().Backing)
	require.Equal(t, "[datastore1] standbykit-writer/standbykit-writer.iso", b.FileName)
	got, err := os.ReadFile(filepath.Join(sim.Dir, "standbykit-writer", "standbykit-writer.iso"))
	require.NoError(t, err)
	require.Equal(t, iso, got)
}
