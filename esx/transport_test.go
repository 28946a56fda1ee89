package esx

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/vim25/soap"

	"github.com/standbykit/standbykit/bootpoint"
)

func TestDatastoreHTTP(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	ds, tr := h.Datastore, DatastoreHTTP{}
	data := fakeStreamVMDK(7, 1<<20, "x.vmdk")

	require.NoError(t, tr.Upload(ctx, ds, "dir/known.bin", memFile("known", data, int64(len(data)))))
	require.NoError(t, tr.Upload(ctx, ds, "dir/unknown.bin", memFile("unknown", data, -1)))
	for _, n := range []string{"known.bin", "unknown.bin"} {
		got, err := os.ReadFile(filepath.Join(sim.Dir, "dir", n))
		require.NoError(t, err)
		require.Equal(t, data, got)
	}

	r, n, err := tr.Download(ctx, ds, "dir/known.bin")
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.EqualValues(t, len(data), n)
	require.Equal(t, data, got)

	r, err = tr.DownloadRange(ctx, ds, "dir/known.bin", 512, 100)
	require.NoError(t, err)
	got, err = io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.Equal(t, data[512:612], got)

	// vcsim's file server honours ranges (http.FileServer).
	p := soap.DefaultDownload
	p.Headers = map[string]string{"Range": "bytes=0-3"}
	res, err := ds.Client().DownloadRequest(ctx, ds.NewURL("dir/known.bin"), &p)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusPartialContent, res.StatusCode)

	// The embedded descriptor of a sparse file.
	desc, embedded, err := h.readDescriptor(ctx, ds, "dir/known.bin")
	require.NoError(t, err)
	require.True(t, embedded)
	require.Equal(t, []string{"x.vmdk"}, extentFiles(desc))

	require.NoError(t, tr.Delete(ctx, ds, "dir/known.bin"))
	require.NoFileExists(t, filepath.Join(sim.Dir, "dir", "known.bin"))
	require.NoError(t, tr.Delete(ctx, ds, "dir/known.bin"), "deleting a missing file")
	_, _, err = tr.Download(ctx, ds, "dir/known.bin")
	require.Error(t, err)
	require.Error(t, tr.Upload(ctx, ds, "dir/x", bootpoint.File{Name: "x"}))
}

func TestExtentFiles(t *testing.T) {
	desc := []byte("# Disk DescriptorFile\nversion=1\nparentFileNameHint=\"p.vmdk\"\n" +
		"RW 4192256 VMFSSPARSE \"a-delta.vmdk\"\nRDONLY 100 FLAT \"b-flat.vmdk\" 0\nRW 10 ZERO\n" +
		"RW 8 SESPARSE \"with space.vmdk\"\n")
	require.Equal(t, []string{"a-delta.vmdk", "b-flat.vmdk", "with space.vmdk"}, extentFiles(desc))
}

func TestConnect(t *testing.T) {
	sim, _ := startHost(t)
	ctx := context.Background()

	cfg := sim.Config()
	cfg.Password = "wrong"
	_, err := Connect(ctx, cfg)
	require.ErrorContains(t, err, "login")

	cfg = sim.Config()
	cfg.Datastore = "nope"
	_, err = Connect(ctx, cfg)
	require.ErrorContains(t, err, "datastore")

	cfg = sim.Config()
	cfg.Datastore, cfg.Network, cfg.Folder = "", "Failover Network", "vm"
	h, err := Connect(ctx, cfg)
	require.NoError(t, err)
	require.Equal(t, SimDatastore, h.Datastore.Name())
	require.NotNil(t, h.Network)
	require.NoError(t, h.Close(ctx))
}
