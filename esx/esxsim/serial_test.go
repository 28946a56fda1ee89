package esxsim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/sync/errgroup"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/esxsim"
)

// Clients that create, read back and destroy VMs at once, while another
// polls the inventory and datastore files: everything succeeds, and under
// -race the run is free of data races (vcsim alone races on exactly this
// mix: its tasks write objects that other calls, and its own datastore
// file handler, read without their locks).
func TestConcurrentClients(t *testing.T) {
	sim, h := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	poll, pollCtx := errgroup.WithContext(ctx)
	poll.Go(func() error {
		for pollCtx.Err() == nil {
			for i := range 4 {
				if _, err := h.FindVM(pollCtx, fmt.Sprintf("vm%d", i)); err != nil && pollCtx.Err() == nil && !isNotFound(err) {
					return err
				}
				res, err := http.Get(folderURL(t, sim, fmt.Sprintf("vm%d/vm%d.vmdk", i, i)))
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}
		return nil
	})

	var work errgroup.Group
	for i := range 4 {
		work.Go(func() error {
			_, content := disk(byte(0x10 + i))
			vm, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: fmt.Sprintf("vm%d", i)}, []bootpoint.Delta{content})
			if err != nil {
				return err
			}
			if _, err := h.AddBootPoint(ctx, vm, nil, "p1", ""); err != nil {
				return err
			}
			if _, err := h.Snapshots(ctx, vm); err != nil {
				return err
			}
			return h.DestroyVM(ctx, vm)
		})
	}
	require.NoError(t, work.Wait())
	cancel()
	require.NoError(t, poll.Wait())
	unused, err := sim.UnusedDiskFiles()
	require.NoError(t, err)
	require.Empty(t, unused)
}

// isNotFound: a VM not created yet, or destroyed between the lookup of
// its name and the read of its properties.
func isNotFound(err error) bool {
	return errors.Is(err, bootpoint.ErrNotFound) || fault.Is(err, &types.ManagedObjectNotFound{})
}

func folderURL(t *testing.T, sim *esxsim.Simulator, rel string) string {
	t.Helper()
	u, err := url.Parse(sim.URL())
	require.NoError(t, err)
	u.User = nil
	u.Path = "/folder/" + rel
	u.RawQuery = url.Values{"dsName": {esxsim.Datastore}}.Encode()
	return u.String()
}

// The datastore's files over /folder: PUT writes, GET reads (ranges too),
// POST creates only what does not exist; another datastore is not found,
// and a path that climbs out of the datastore is refused.
func TestFolderTransfers(t *testing.T) {
	sim, _ := start(t)
	do := func(method, target string, body []byte, header ...string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, target, bytes.NewReader(body))
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, b
	}
	file := folderURL(t, sim, "dir/notes.txt")
	code, _ := do(http.MethodPut, file, []byte("0123456789"))
	require.Equal(t, http.StatusOK, code)
	got, err := os.ReadFile(filepath.Join(sim.Dir, "dir", "notes.txt"))
	require.NoError(t, err)
	require.Equal(t, "0123456789", string(got))

	code, b := do(http.MethodGet, file, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "0123456789", string(b))
	code, b = do(http.MethodGet, file, nil, "Range", "bytes=3-5")
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, "345", string(b))

	code, _ = do(http.MethodPost, file, []byte("other"))
	require.Equal(t, http.StatusConflict, code)
	got, err = os.ReadFile(filepath.Join(sim.Dir, "dir", "notes.txt"))
	require.NoError(t, err)
	require.Equal(t, "0123456789", string(got), "a refused POST leaves the file")
	code, _ = do(http.MethodPost, folderURL(t, sim, "dir/new.txt"), []byte("new"))
	require.Equal(t, http.StatusOK, code)

	code, _ = do(http.MethodGet, folderURL(t, sim, "dir/missing.txt"), nil)
	require.Equal(t, http.StatusNotFound, code)
	other := strings.Replace(file, "dsName="+esxsim.Datastore, "dsName=datastore2", 1)
	code, _ = do(http.MethodGet, other, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(sim.Dir), "outside.txt"), []byte("secret"), 0o644))
	climb := strings.Replace(folderURL(t, sim, "dir/x"), "dir/x", "dir/%2E%2E/%2E%2E/outside.txt", 1)
	code, b = do(http.MethodGet, climb, nil)
	require.NotEqual(t, http.StatusOK, code)
	require.NotContains(t, string(b), "secret")
}

// CreateTask, on which vcsim's ESX model panics and leaves its task
// manager locked, fails as not supported, and the simulator goes on
// answering calls, those that run tasks included.
func TestCreateTaskRefused(t *testing.T) {
	_, h := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := h.Client
	_, err := methods.CreateTask(ctx, c, &types.CreateTask{
		This: *c.ServiceContent.TaskManager, Obj: c.ServiceContent.RootFolder,
		TaskTypeId: "com.example.long",
	})
	require.True(t, fault.Is(err, &types.NotSupported{}), "%v", err)
	_, content := disk(0x66)
	vm, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: "after"}, []bootpoint.Delta{content})
	require.NoError(t, err)
	_, err = h.AddBootPoint(ctx, vm, nil, "p1", "")
	require.NoError(t, err)
}
