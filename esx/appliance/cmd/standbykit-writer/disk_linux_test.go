package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx/appliance"
	"github.com/standbykit/standbykit/internal/extent"
)

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(r.Uint32())
	}
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// checkDisk reads and writes a disk at random, unaligned places and
// compares it with a model of its content, then the file itself.
func checkDisk(t *testing.T, dir string, direct bool) {
	r := rand.New(rand.NewPCG(1, 2))
	const size = 3<<20 + 3*4096
	model := randomBytes(r, size)
	name := filepath.Join(dir, "disk.img")
	require.NoError(t, os.WriteFile(name, model, 0o644))

	d, err := openDiskMode(name, true, direct)
	require.NoError(t, err)
	defer d.Close()
	t.Logf("%s: O_DIRECT %v, block %d", dir, d.direct, d.block)
	if !direct {
		assert.False(t, d.direct)
	}
	assert.Equal(t, int64(size), d.Size())

	for i := range 200 {
		off := r.Int64N(size)
		n := r.IntN(min(size-int(off), 1<<20) + 1)
		if i%3 == 0 { // whole sectors too
			off &^= 511
			n &^= 511
		}
		if i%2 == 0 {
			data := randomBytes(r, n)
			w, err := d.WriteAt(data, off)
			require.NoError(t, err, "write %d at %d", n, off)
			require.Equal(t, n, w)
			copy(model[off:], data)
		} else {
			got := make([]byte, n)
			m, err := d.ReadAt(got, off)
			require.NoError(t, err, "read %d at %d", n, off)
			require.Equal(t, n, m)
			require.True(t, bytes.Equal(model[off:off+int64(n)], got), "read %d at %d", n, off)
		}
	}

	// Writes into the two halves of the same blocks, at once.
	var wg sync.WaitGroup
	for i := range 16 {
		off := int64(8192 + i*100)
		data := bytes.Repeat([]byte{byte(i + 1)}, 100)
		copy(model[off:], data)
		wg.Go(func() {
			_, err := d.WriteAt(data, off)
			assert.NoError(t, err)
		})
	}
	wg.Wait()

	// The end of the disk.
	buf := make([]byte, 1000)
	n, err := d.ReadAt(buf, size-300)
	assert.Equal(t, 300, n)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, model[size-300:], buf[:300])
	n, err = d.ReadAt(buf, size)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, io.EOF)
	_, err = d.WriteAt(buf, size-300)
	assert.Error(t, err)
	_, err = d.WriteAt(buf, -1)
	assert.Error(t, err)
	_, err = d.ReadAt(buf, -1)
	assert.Error(t, err)
	n, err = d.WriteAt(buf[:300], size-300)
	assert.NoError(t, err)
	assert.Equal(t, 300, n)
	copy(model[size-300:], buf[:300])

	require.NoError(t, d.Sync())
	onFile, err := os.ReadFile(name)
	require.NoError(t, err)
	assert.Equal(t, len(model), len(onFile))
	assert.True(t, bytes.Equal(model, onFile), "file content")

	ro, err := openDisk(name, false)
	require.NoError(t, err)
	defer ro.Close()
	_, err = ro.WriteAt([]byte{1}, 0)
	assert.Error(t, err, "read-only")
}

// TestDisk checks the disk with O_DIRECT where the temporary directory's
// file system has it (ext4, xfs, tmpfs since Linux 6.6), and without.
func TestDisk(t *testing.T) {
	t.Run("direct", func(t *testing.T) { checkDisk(t, t.TempDir(), true) })
	t.Run("buffered", func(t *testing.T) { checkDisk(t, t.TempDir(), false) })
}

func TestAlignedBuf(t *testing.T) {
	for _, n := range []int{1, 4096, chunk} {
		b := alignedBuf(n)
		assert.Len(t, b, n)
		assert.Equal(t, n, cap(b))
		assert.Zero(t, addr(b)%memAlign)
	}
}

// TestWork runs the writer's work on regular files standing for the
// disks, with a sysfs-like tree listing them: the payload disk is found
// among them and applied to the targets; a payload made for other
// content changes nothing.
func TestWork(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	dev := t.TempDir()
	sys := fstest.MapFS{}
	addDisk := func(name string, data []byte, minor int) {
		require.NoError(t, os.WriteFile(filepath.Join(dev, name), data, 0o644))
		sys["block/"+name+"/dev"] = &fstest.MapFile{Data: fmt.Appendf(nil, "8:%d\n", minor)}
		sys["block/"+name+"/size"] = &fstest.MapFile{Data: fmt.Appendf(nil, "%d\n", len(data)/512)}
		sys["block/"+name+"/device/type"] = &fstest.MapFile{Data: []byte("0\n")}
	}
	baseA, baseB := randomBytes(r, 1<<20), randomBytes(r, 3<<19)
	newA, newB := bytes.Clone(baseA), bytes.Clone(baseB)
	extA := []extent.Extent{{Off: 0, Len: 4096}, {Off: 65536, Len: 512 * 37}}
	extB := []extent.Extent{{Off: 512, Len: 1024}, {Off: 1<<20 + 4096, Len: 1 << 18}}
	for _, e := range extA {
		copy(newA[e.Off:], randomBytes(r, int(e.Len)))
	}
	for _, e := range extB {
		copy(newB[e.Off:], randomBytes(r, int(e.Len)))
	}
	payload := func(baseA []byte) ([]byte, string) {
		var p bytes.Buffer
		id, _, err := appliance.WritePayload(context.Background(), &p, []appliance.Target{
			{Capacity: int64(len(newB)), Extents: extB, Source: bytes.NewReader(newB), Base: bytes.NewReader(baseB)},
			{Capacity: int64(len(newA)), Extents: extA, Source: bytes.NewReader(newA), Base: bytes.NewReader(baseA)},
		})
		require.NoError(t, err)
		return p.Bytes(), id
	}
	good, id := payload(baseA)
	wrongBase := bytes.Clone(baseA)
	wrongBase[100] ^= 1
	wrong, wrongID := payload(wrongBase)

	addDisk("sda", baseA, 0)
	addDisk("sdb", baseB, 16)
	addDisk("sdc", wrong, 32)
	var log strings.Builder
	e := env{
		cfg:    config{wait: 0, settle: 0},
		sys:    sys,
		devDir: dev,
		logf:   func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) },
		poll:   0,
	}
	var report bytes.Buffer
	e.report = &report
	_, err := work(context.Background(), e)
	assert.ErrorIs(t, err, appliance.ErrGuard)
	assert.ErrorIs(t, appliance.ReadReport(bytes.NewReader(report.Bytes()), wrongID), appliance.ErrGuard)
	for name, want := range map[string][]byte{"sda": baseA, "sdb": baseB} {
		got, err := os.ReadFile(filepath.Join(dev, name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "%s unchanged", name)
	}
	assert.Contains(t, log.String(), "sdc holds payload "+wrongID)

	require.NoError(t, os.WriteFile(filepath.Join(dev, "sdc"), good, 0o644))
	sys["block/sdc/size"] = &fstest.MapFile{Data: fmt.Appendf(nil, "%d\n", len(good)/512)}
	report.Reset()
	results, err := work(context.Background(), e)
	require.NoError(t, err, log.String())
	require.Len(t, results, 1)
	res := results[0]
	require.NoError(t, appliance.ReadReport(bytes.NewReader(report.Bytes()), id))
	assert.Equal(t, id, res.PayloadID)
	assert.Equal(t, []int{1, 0}, res.Targets) // target 0 (B) on sdb, the second disk
	for name, want := range map[string][]byte{"sda": newA, "sdb": newB} {
		got, err := os.ReadFile(filepath.Join(dev, name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "%s written", name)
	}
	t.Log(log.String())
}

// TestWorkUnits runs the writer's work with two empty disks of a size
// that the payload writes over the same ranges: on pvscsi the units tell
// them apart; where the disks have no units (the same tree, on AHCI) the
// guard alone cannot, and nothing is written.
func TestWorkUnits(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const size = 1 << 20
	exts := []extent.Extent{{Off: 0, Len: 4096}, {Off: 65536, Len: 512 * 37}}
	zero := make([]byte, size)
	news := [2][]byte{bytes.Clone(zero), bytes.Clone(zero)}
	for _, n := range news {
		for _, e := range exts {
			copy(n[e.Off:], randomBytes(r, int(e.Len)))
		}
	}
	var p bytes.Buffer
	id, _, err := appliance.WritePayload(context.Background(), &p, []appliance.Target{
		{Capacity: size, Extents: exts, Source: bytes.NewReader(news[0]), Base: bytes.NewReader(zero), Unit: 1},
		{Capacity: size, Extents: exts, Source: bytes.NewReader(news[1]), Base: bytes.NewReader(zero), Unit: 2},
	})
	require.NoError(t, err)
	payload := p.Bytes()

	for _, driver := range []string{"vmw_pvscsi", "ahci"} {
		t.Run(driver, func(t *testing.T) {
			dev := t.TempDir()
			sys := newFakeSys()
			host := sys.scsiHost("0000:00:10.0", 2, driver)
			// sdb is at unit 2, sdc at unit 1: names do not follow units.
			for _, d := range []struct {
				name string
				unit int
				data []byte
			}{{"sda", 0, payload}, {"sdb", 2, zero}, {"sdc", 1, zero}} {
				require.NoError(t, os.WriteFile(filepath.Join(dev, d.name), d.data, 0o644))
				sys.scsiDisk(d.name, fmt.Sprintf("8:%d", 16*d.unit), int64(len(d.data)), host, 2, 0, d.unit, 0)
			}
			var log strings.Builder
			var report bytes.Buffer
			e := env{sys: sys, devDir: dev, report: &report, logf: func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) }}
			results, err := work(context.Background(), e)
			t.Log(log.String())
			require.Len(t, results, 1)
			res := results[0]
			got := func(name string) []byte {
				b, err := os.ReadFile(filepath.Join(dev, name))
				require.NoError(t, err)
				return b
			}
			if driver == "ahci" {
				require.ErrorIs(t, err, appliance.ErrGuard)
				assert.ErrorContains(t, err, "ambiguous")
				assert.Contains(t, log.String(), "no SCSI units beside sda: the payload disk's adapter (ahci) gives no units")
				assert.True(t, bytes.Equal(zero, got("sdb")) && bytes.Equal(zero, got("sdc")), "nothing written")
				return
			}
			require.NoError(t, err)
			require.NoError(t, appliance.ReadReport(bytes.NewReader(report.Bytes()), id))
			assert.Equal(t, []int{1, 0}, res.Targets, "target 0 on sdc (unit 1), target 1 on sdb (unit 2)")
			assert.True(t, bytes.Equal(news[0], got("sdc")), "sdc is target 0")
			assert.True(t, bytes.Equal(news[1], got("sdb")), "sdb is target 1")
			assert.Contains(t, log.String(), "payload on sda (49152 bytes, 2:0:0:0 on vmw_pvscsi)\ndisks: sdb (1 MiB, 2:0:2:0 on vmw_pvscsi, unit 2), sdc (1 MiB, 2:0:1:0 on vmw_pvscsi, unit 1)")
			assert.Contains(t, report.String(), `"unit":1`)
		})
	}
}

// TestWorkBatch runs the writer's work with two payloads, each on its own
// pvscsi controller with two empty disks at units 1 and 2 (two standby
// VMs in one run): every target has the same capacity, ranges and guard,
// so only the controllers tell the payloads' disks apart.
func TestWorkBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const size = 1 << 20
	exts := []extent.Extent{{Off: 512, Len: 4096}, {Off: 300 << 10, Len: 512 * 11}}
	zero := make([]byte, size)
	type vm struct {
		payload []byte
		id      string
		news    [2][]byte
	}
	var vms [2]vm
	for i := range vms {
		var targets []appliance.Target
		for j := range vms[i].news {
			n := bytes.Clone(zero)
			for _, e := range exts {
				copy(n[e.Off:], randomBytes(r, int(e.Len)))
			}
			vms[i].news[j] = n
			targets = append(targets, appliance.Target{Capacity: size, Extents: exts, Source: bytes.NewReader(n), Base: bytes.NewReader(zero), Unit: j + 1})
		}
		var p bytes.Buffer
		id, _, err := appliance.WritePayload(context.Background(), &p, targets)
		require.NoError(t, err)
		vms[i].payload, vms[i].id = p.Bytes(), id
	}
	dev := t.TempDir()
	sys := newFakeSys()
	// Host 3's disks are listed first, and its payload before host 2's.
	disksOf := []struct {
		name       string
		host, unit int
		data       []byte
	}{{"sda", 3, 1, zero}, {"sdb", 3, 0, vms[1].payload}, {"sdc", 2, 2, zero}, {"sdd", 3, 2, zero}, {"sde", 2, 0, vms[0].payload}, {"sdf", 2, 1, zero}}
	hosts := map[int]string{2: sys.scsiHost("0000:00:10.0", 2, "vmw_pvscsi"), 3: sys.scsiHost("0000:00:11.0", 3, "vmw_pvscsi")}
	for i, d := range disksOf {
		require.NoError(t, os.WriteFile(filepath.Join(dev, d.name), d.data, 0o644))
		sys.scsiDisk(d.name, fmt.Sprintf("8:%d", 16*i), int64(len(d.data)), hosts[d.host], d.host, 0, d.unit, 0)
	}
	var log strings.Builder
	var report bytes.Buffer
	e := env{sys: sys, devDir: dev, report: &report, logf: func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) }}
	results, err := work(context.Background(), e)
	t.Log(log.String())
	require.NoError(t, err)
	require.Len(t, results, 2)
	for _, v := range vms {
		require.NoError(t, appliance.ReadReport(bytes.NewReader(report.Bytes()), v.id))
	}
	want := map[string][]byte{"sda": vms[1].news[0], "sdd": vms[1].news[1], "sdf": vms[0].news[0], "sdc": vms[0].news[1]}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(dev, name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(w, got), "%s", name)
	}
}
