package esx

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/vim25/soap"

	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/vmdk"
)

func TestDatastoreHTTP(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	ds, tr := h.Datastore, DatastoreHTTP{}
	contents, _ := baseContents(7)
	var stream bytes.Buffer
	_, err := vmdk.WriteStreamOptimized(ctx, &stream, contents[0].Source, contents[0].Size, vmdk.StreamOptions{ExtentName: "x.vmdk"})
	require.NoError(t, err)
	data := stream.Bytes()
	unknown := memFile("unknown", data)
	unknown.Size = -1

	require.NoError(t, tr.Upload(ctx, ds, "dir/known.bin", memFile("known", data)))
	require.NoError(t, tr.Upload(ctx, ds, "dir/unknown.bin", unknown))
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
	require.Equal(t, vmdk.CreateStreamOptimized, desc.CreateType)
	require.Equal(t, "x.vmdk", desc.Extents[0].File)

	require.NoError(t, tr.Delete(ctx, ds, "dir/known.bin"))
	require.NoFileExists(t, filepath.Join(sim.Dir, "dir", "known.bin"))
	require.NoError(t, tr.Delete(ctx, ds, "dir/known.bin"), "deleting a missing file")
	_, _, err = tr.Download(ctx, ds, "dir/known.bin")
	require.Error(t, err)
	require.Error(t, tr.Upload(ctx, ds, "dir/x", File{Name: "x"}))
}

func TestConnect(t *testing.T) {
	sim, _ := startHost(t)
	ctx := context.Background()

	cfg := simConfig(sim)
	cfg.Password = "wrong"
	_, err := Connect(ctx, cfg)
	require.ErrorContains(t, err, "login")

	cfg = simConfig(sim)
	cfg.Datastore = "nope"
	_, err = Connect(ctx, cfg)
	require.ErrorContains(t, err, "datastore")

	cfg = simConfig(sim)
	cfg.Datastore, cfg.Network, cfg.Folder = "", "Failover Network", "vm"
	h, err := Connect(ctx, cfg)
	require.NoError(t, err)
	require.Equal(t, esxsim.Datastore, h.Datastore.Name())
	require.NotNil(t, h.Network)
	require.NoError(t, h.Close(ctx))
}
