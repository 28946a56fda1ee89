package esx_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/sample"
)

// countingTransport counts the bytes downloaded from the datastore.
type countingTransport struct {
	esx.DatastoreHTTP
	read atomic.Int64
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}

func (c *countingTransport) Download(ctx context.Context, ds *object.Datastore, path string) (io.ReadCloser, int64, error) {
	r, n, err := c.DatastoreHTTP.Download(ctx, ds, path)
	if err != nil {
		return nil, 0, err
	}
	return countingReader{r, &c.read}, n, nil
}

func (c *countingTransport) DownloadRange(ctx context.Context, ds *object.Datastore, path string, offset, length int64) (io.ReadCloser, error) {
	r, err := c.DatastoreHTTP.DownloadRange(ctx, ds, path, offset, length)
	if err != nil {
		return nil, err
	}
	return countingReader{r, &c.read}, nil
}

// TestNewChainAndReadBackOnSimulator: full, three incrementals, a new full
// image and two incrementals make seven boot points on one VM on the
// simulator, each read back as it is made; reading back what a boot point
// wrote downloads about that much from the datastore (plus the chain's
// descriptors and tables), a full verification the disk.
func TestNewChainAndReadBackOnSimulator(t *testing.T) {
	ctx := context.Background()
	const diskSize = 16 << 20
	images := t.TempDir()
	_, err := sample.Write(ctx, images, sample.Options{DiskSize: diskSize, Incrementals: 3, Seed: 30})
	require.NoError(t, err)
	_, err = sample.ExtendFull(ctx, images, 31, nil)
	require.NoError(t, err)
	_, err = sample.Extend(ctx, images, 2, 32, nil)
	require.NoError(t, err)
	set, err := aipimage.OpenDir(images, nil)
	require.NoError(t, err)
	defer set.Close()

	_, host := connectSim(t)
	counter := &countingTransport{DatastoreHTTP: esx.DatastoreHTTP{TempDir: t.TempDir()}}
	host.Transport = counter
	sb := &bootpoint.Standby{Hypervisor: host, Inspector: shiftingPatches{}, VM: bootpoint.VMSpec{Name: "db01-standby"}}
	// Sync starts at the newest chain: go through the old one by hand.
	for k := range set.Points() {
		r, err := sb.Add(ctx, set, k)
		require.NoError(t, err, "point %d", k)
		require.Equal(t, r.Bytes, r.ReadBack, "point %d read back where it was written", k)
		if k == 4 {
			require.Positive(t, r.Compared, "the new full image was compared with point 3")
			require.Less(t, r.Bytes, int64(diskSize/8), "and only the differences written")
		}
	}
	_, bps, err := sb.BootPoints(ctx)
	require.NoError(t, err)
	require.Len(t, bps, 7)
	for k, bp := range bps {
		require.Equal(t, k, bp.Meta.Sequence)
		before := counter.read.Load()
		v, err := sb.VerifyBootPoint(ctx, set, k, false)
		require.NoError(t, err, "boot point %d", k)
		changed := counter.read.Load() - before

		before = counter.read.Load()
		full, err := sb.VerifyBootPoint(ctx, set, k, true)
		require.NoError(t, err, "boot point %d in full", k)
		whole := counter.read.Load() - before
		require.Equal(t, int64(diskSize), full.Bytes)
		require.GreaterOrEqual(t, whole, int64(diskSize))
		if k > 0 {
			require.Less(t, changed, whole/4, "boot point %d: reading back what it wrote is not reading the disk", k)
		}
		t.Logf("boot point %d: wrote %d bytes; verifying them downloaded %d bytes in %v; the full verification %d bytes in %v",
			k, v.Bytes, changed, v.Duration.Round(1e6), whole, full.Duration.Round(1e6))
	}
}

// BenchmarkVerifyOnSimulator measures what verifying a boot point costs
// on the simulator, in bytes downloaded from the datastore per
// verification: what its increment wrote ("written"), or the whole disk
// ("full"). A 64 MiB sample disk, the boot point of its sixth increment.
func BenchmarkVerifyOnSimulator(b *testing.B) {
	ctx := context.Background()
	images := b.TempDir()
	_, err := sample.Write(ctx, images, sample.Options{DiskSize: 64 << 20, Incrementals: 6, Seed: 33})
	require.NoError(b, err)
	set, err := aipimage.OpenDir(images, nil)
	require.NoError(b, err)
	defer set.Close()
	sim, err := esxsim.Start(ctx, b.TempDir())
	require.NoError(b, err)
	defer sim.Close()
	host, err := esx.Connect(ctx, esx.Config{URL: sim.URL(), Insecure: true, Datastore: esxsim.Datastore, ApplianceImage: esx.ApplianceImageNone})
	require.NoError(b, err)
	defer host.Close(ctx)
	host.TempDir = b.TempDir()
	counter := &countingTransport{DatastoreHTTP: esx.DatastoreHTTP{TempDir: b.TempDir()}}
	host.Transport = counter
	sb := &bootpoint.Standby{Hypervisor: host, VM: bootpoint.VMSpec{Name: "bench"}}
	for _, k := range []int{5, 6} {
		_, err := sb.Add(ctx, set, k)
		require.NoError(b, err)
	}
	for _, full := range []bool{false, true} {
		b.Run(map[bool]string{false: "written", true: "full"}[full], func(b *testing.B) {
			var written, read int64
			for b.Loop() {
				before := counter.read.Load()
				v, err := sb.VerifyBootPoint(ctx, set, 6, full)
				require.NoError(b, err)
				read += counter.read.Load() - before
				written = v.Bytes
			}
			b.ReportMetric(float64(read)/float64(b.N), "downloaded-B/op")
			b.ReportMetric(float64(written), "compared-B/op")
		})
	}
}
