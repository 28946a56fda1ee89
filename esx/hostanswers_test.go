package esx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/internal/hosttext"
)

// A host's snapshot tree is checked before it is walked.
func TestCheckSnapshotTree(t *testing.T) {
	chain := func(depth int) *types.VirtualMachineSnapshotInfo {
		var t *types.VirtualMachineSnapshotTree
		for range depth {
			n := types.VirtualMachineSnapshotTree{Name: "s"}
			if t != nil {
				n.ChildSnapshotList = []types.VirtualMachineSnapshotTree{*t}
			}
			t = &n
		}
		return &types.VirtualMachineSnapshotInfo{RootSnapshotList: []types.VirtualMachineSnapshotTree{*t}}
	}
	require.NoError(t, checkSnapshotTree(nil))
	require.NoError(t, checkSnapshotTree(chain(31)))
	require.NoError(t, checkSnapshotTree(chain(maxSnapshotDepth)))
	require.ErrorIs(t, checkSnapshotTree(chain(maxSnapshotDepth+1)), ErrImplausible)

	wide := &types.VirtualMachineSnapshotInfo{RootSnapshotList: make([]types.VirtualMachineSnapshotTree, maxSnapshots)}
	require.NoError(t, checkSnapshotTree(wide))
	wide.RootSnapshotList = append(wide.RootSnapshotList, types.VirtualMachineSnapshotTree{})
	require.ErrorIs(t, checkSnapshotTree(wide), ErrImplausible)
}

// A task's fault keeps its type through waitTask, and its text, the
// host's, is bounded.
func TestTaskErrorsBounded(t *testing.T) {
	simulator.Test(func(ctx context.Context, c *vim25.Client) {
		vm, err := find.NewFinder(c).VirtualMachine(ctx, "DC0_H0_VM0")
		require.NoError(t, err)
		on, err := vm.PowerOn(ctx) // already on
		require.NoError(t, err)
		err = waitTask(ctx, on)
		require.Error(t, err)
		require.True(t, fault.Is(err, &types.InvalidPowerState{}), "fault type lost: %v", err)
	})

	huge := task.Error{LocalizedMethodFault: &types.LocalizedMethodFault{
		Fault:            &types.InvalidPowerState{},
		LocalizedMessage: "\x1b]0;owned\x07" + strings.Repeat("the disk is busy; ", 1<<16),
	}}
	err := hosttext.Wrap(huge, maxHostError)
	require.LessOrEqual(t, len(err.Error()), maxHostError)
	require.NotContains(t, err.Error(), "\x1b")
	require.True(t, fault.Is(err, &types.InvalidPowerState{}))
}

// A host's folder listing is checked before it sizes reads.
func TestListedSizes(t *testing.T) {
	file := func(name string, size int64) types.BaseFileInfo {
		return &types.FileInfo{Path: name, FileSize: size}
	}
	sizes, err := listedSizes("[ds] vm", []types.BaseFileInfo{file("vm.vmdk", 512), file("vm-flat.vmdk", 1<<30)})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"vm.vmdk": 512, "vm-flat.vmdk": 1 << 30}, sizes)

	for name, files := range map[string][]types.BaseFileInfo{
		"negative size":  {file("vm.vmdk", -1)},
		"a path":         {file("../other/vm.vmdk", 512)},
		"no name":        {file("", 512)},
		"too many files": make([]types.BaseFileInfo, maxFolderFiles+1),
	} {
		for i := range files {
			if files[i] == nil {
				files[i] = file(fmt.Sprintf("f%d", i), 1)
			}
		}
		_, err := listedSizes("[ds] vm", files)
		require.ErrorIs(t, err, ErrImplausible, name)
	}
}

// A SOAP answer is read up to a limit; datastore transfers are not.
func TestSOAPAnswersBounded(t *testing.T) {
	const limit = 1000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		_, _ = w.Write(bytes.Repeat([]byte("x"), n))
	}))
	defer srv.Close()
	client := &http.Client{Transport: boundedSOAP{next: http.DefaultTransport, path: "/sdk", limit: limit}}
	read := func(method, path string, n int) (int, error) {
		req, err := http.NewRequest(method, fmt.Sprintf("%s%s?n=%d", srv.URL, path, n), nil)
		require.NoError(t, err)
		res, err := client.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return len(b), err
	}
	n, err := read(http.MethodPost, "/sdk", limit)
	require.NoError(t, err)
	require.Equal(t, limit, n)
	_, err = read(http.MethodPost, "/sdk", limit+1)
	require.ErrorIs(t, err, ErrImplausible)
	n, err = read(http.MethodGet, "/folder/vm-flat.vmdk", 10*limit)
	require.NoError(t, err, "datastore downloads are not SOAP answers")
	require.Equal(t, 10*limit, n)
	n, err = read(http.MethodPost, "/other", 10*limit)
	require.NoError(t, err)
	require.Equal(t, 10*limit, n)
}

// Connect bounds the SOAP answers of the session it makes.
func TestConnectBoundsSOAPAnswers(t *testing.T) {
	err := simulator.ESX().Run(func(ctx context.Context, c *vim25.Client) error {
		u := *c.URL()
		u.User = simulator.DefaultLogin
		h, err := Connect(ctx, Config{URL: u.String(), Insecure: true, ApplianceImage: ApplianceImageNone})
		require.NoError(t, err)
		defer h.Close(ctx)
		b, ok := h.Client.Client.Client.Transport.(boundedSOAP)
		require.True(t, ok, "transport %T", h.Client.Client.Client.Transport)
		require.EqualValues(t, maxSOAPAnswer, b.limit)
		require.Equal(t, "/sdk", b.path)
		return nil
	})
	require.NoError(t, err)
}

// A fault a host answers a call that is not a task with (here a failed
// import lease, its message a megabyte with terminal escapes) reaches the
// caller bounded and printable, and still as govmomi's SOAP fault.
func TestCallFaultsBounded(t *testing.T) {
	sim, h := startHost(t)
	msg := "\x1b]0;owned\x07\x1b[2J" + strings.Repeat("the lease failed;\r\n", 1<<16)
	sim.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: "HttpNfcLeaseComplete", ObjectType: "*", ObjectName: "*",
		Probability: 1, FaultType: simulator.FaultTypeGeneric, Message: msg,
		MaxCount: 1, Enabled: true,
	})
	contents, _ := baseContents(1)
	_, err := h.CreateStandby(context.Background(), bootpoint.VMSpec{Name: "sb"}, contents)
	require.Error(t, err)
	require.Less(t, len(err.Error()), 2*maxHostError, "%.200s", err)
	require.NotContains(t, err.Error(), "\x1b")
	require.NotContains(t, err.Error(), "\n")
	require.Contains(t, err.Error(), "the lease failed;")
	var sf interface{ Fault() types.BaseMethodFault }
	require.ErrorAs(t, err, &sf, "the SOAP fault is still in the chain")
	require.True(t, soap.IsSoapFault(sf.(error)))
}
