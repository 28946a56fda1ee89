package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCmdline(t *testing.T) {
	cfg, err := parseCmdline("BOOT_IMAGE=/vmlinuz console=ttyS0 quiet standbykit.report=ttyS1 standbykit.wait=90 standbykit.settle=500ms panic=-1 " +
		"scsi_mod.scan=sync nvme-core.io_timeout=60 scsi_mod.max_luns=1 mptbase.debug standbykit.other=1 .x=1 y.=2\n")
	require.NoError(t, err)
	assert.Equal(t, config{reportDev: "ttyS1", wait: 90 * time.Second, settle: 500 * time.Millisecond, moduleParams: map[string]string{
		"scsi_mod": "scan=sync max_luns=1", "nvme_core": "io_timeout=60", "mptbase": "debug",
	}}, cfg)

	cfg, err = parseCmdline("console=tty0 quiet")
	require.NoError(t, err)
	assert.Equal(t, defaultConfig(), cfg)
	assert.Equal(t, "ttyS0", cfg.reportDev)

	cfg, err = parseCmdline("standbykit.report=/dev/ttyS2")
	require.NoError(t, err)
	assert.Equal(t, "ttyS2", cfg.reportDev)

	for _, bad := range []string{"standbykit.report=", "standbykit.report=../sda", "standbykit.wait=soon", "standbykit.settle=-1", "standbykit.wait=48h"} {
		cfg, err := parseCmdline("console=ttyS0 " + bad)
		assert.Error(t, err, bad)
		assert.Equal(t, defaultConfig(), cfg, bad)
	}
}

// sysTree is a /sys/block like the appliance's under qemu with an NVMe
// disk, SCSI disks, a CD-ROM, a loop device, a hidden NVMe path device and
// a partition.
func sysTree() fstest.MapFS {
	fs := fstest.MapFS{}
	disk := func(name, dev, size string, extra ...string) {
		fs["block/"+name+"/dev"] = &fstest.MapFile{Data: []byte(dev + "\n")}
		fs["block/"+name+"/size"] = &fstest.MapFile{Data: []byte(size + "\n")}
		fs["block/"+name+"/ro"] = &fstest.MapFile{Data: []byte("0\n")}
		fs["block/"+name+"/removable"] = &fstest.MapFile{Data: []byte("0\n")}
		fs["block/"+name+"/device/model"] = &fstest.MapFile{Data: []byte("QEMU HARDDISK\n")}
		for i := 0; i+1 < len(extra); i += 2 {
			fs["block/"+name+"/"+extra[i]] = &fstest.MapFile{Data: []byte(extra[i+1] + "\n")}
		}
	}
	disk("sda", "8:0", "131072")
	fs["block/sda/sda1/size"] = &fstest.MapFile{Data: []byte("2048\n")}
	fs["block/sda/sda1/partition"] = &fstest.MapFile{Data: []byte("1\n")}
	disk("sdb", "8:16", "196608")
	disk("sdc", "8:32", "16", "ro", "1")
	disk("sr0", "11:0", "2097152", "removable", "1")
	disk("nvme0n1", "259:0", "131072")
	disk("nvme0c0n1", "259:1", "131072", "hidden", "1")
	disk("sdd", "8:48", "0") // no medium
	fs["block/loop0/dev"] = &fstest.MapFile{Data: []byte("7:0\n")}
	fs["block/loop0/size"] = &fstest.MapFile{Data: []byte("1024\n")}
	return fs
}

func TestListDisks(t *testing.T) {
	disks, err := listDisks(sysTree())
	require.NoError(t, err)
	assert.Equal(t, []blockDev{
		{Name: "nvme0n1", Dev: "259:0", Size: 64 << 20},
		{Name: "sda", Dev: "8:0", Size: 64 << 20},
		{Name: "sdb", Dev: "8:16", Size: 96 << 20},
		{Name: "sdc", Dev: "8:32", Size: 8192, ReadOnly: true},
	}, disks)
	assert.Equal(t, "sda (64 MiB), sdc (8192 bytes)", listString([]blockDev{disks[1], disks[3]}))

	_, err = listDisks(fstest.MapFS{})
	assert.Error(t, err)
}

func TestWaiter(t *testing.T) {
	sda := blockDev{Name: "sda", Dev: "8:0", Size: 1 << 20}
	sdb := blockDev{Name: "sdb", Dev: "8:16", Size: 1 << 20}
	sdc := blockDev{Name: "sdc", Dev: "8:32", Size: 1 << 20}
	var scans int
	// The disks appear one by one; sdb is the payload, and its first
	// probe fails (not ready yet).
	appear := func(lists ...[]blockDev) func() ([]blockDev, error) {
		return func() ([]blockDev, error) {
			scans++
			if scans == 1 {
				return nil, errors.New("no /sys/block yet")
			}
			return lists[min(scans-2, len(lists)-1)], nil
		}
	}
	failedOnce := false
	probe := func(d blockDev) (bool, error) {
		if d.Name == "sdb" && !failedOnce {
			failedOnce = true
			return false, errors.New("I/O error")
		}
		return d.Name == "sdb", nil
	}
	w := &waiter{
		scan:   appear(nil, []blockDev{sda}, []blockDev{sda, sdb}, []blockDev{sda, sdb, sdc}),
		probe:  probe,
		wait:   5 * time.Second,
		settle: 30 * time.Millisecond,
		poll:   5 * time.Millisecond,
		log:    t.Logf,
	}
	payloads, others, err := w.run()
	require.NoError(t, err)
	assert.Equal(t, []blockDev{sdb}, payloads)
	assert.Equal(t, []blockDev{sda, sdc}, others)
	assert.True(t, failedOnce)

	// No payload: the error names the disks seen.
	start := time.Now()
	w = &waiter{
		scan:  func() ([]blockDev, error) { return []blockDev{sda, sdc}, nil },
		probe: func(blockDev) (bool, error) { return false, nil },
		wait:  50 * time.Millisecond, settle: time.Millisecond, poll: 5 * time.Millisecond,
	}
	_, _, err = w.run()
	assert.ErrorContains(t, err, "no payload disk after 50ms among sda (1 MiB), sdc (1 MiB)")
	assert.Less(t, time.Since(start), 2*time.Second)

	// No disk at all.
	w.scan = func() ([]blockDev, error) { return nil, nil }
	_, _, err = w.run()
	assert.ErrorContains(t, err, "and no disk at all")

	// Two payloads: a batch.
	w.scan = func() ([]blockDev, error) { return []blockDev{sda, sdb, sdc}, nil }
	w.probe = func(d blockDev) (bool, error) { return d.Name != "sda", nil }
	payloads, others, err = w.run()
	require.NoError(t, err)
	assert.Equal(t, []blockDev{sdb, sdc}, payloads)
	assert.Equal(t, []blockDev{sda}, others)

	// Disks that keep changing: at the deadline the payload is taken.
	n := 0
	w.scan = func() ([]blockDev, error) {
		n++
		return []blockDev{sdb, {Name: "sdx", Dev: "8:64", Size: int64(n) << 20}}, nil
	}
	w.probe = func(d blockDev) (bool, error) { return d.Name == "sdb", nil }
	w.settle = time.Hour
	payloads, others, err = w.run()
	require.NoError(t, err)
	assert.Equal(t, []blockDev{sdb}, payloads)
	assert.Len(t, others, 1)
}

func TestTracker(t *testing.T) {
	var out bytes.Buffer
	tr := newTracker(&out)
	assert.False(t, tr.ended())
	for _, chunk := range []string{`{"event":"start","ok":true}`, "\n", `{"event":"gu`, `ard","ok":true}` + "\n"} {
		n, err := tr.Write([]byte(chunk))
		require.NoError(t, err)
		assert.Equal(t, len(chunk), n)
	}
	assert.Equal(t, "guard", tr.lastEvent())
	assert.False(t, tr.ended())
	_, _ = tr.Write([]byte(`{"event":"done","ok":true}` + "\n" + `{"event":"er`))
	assert.Equal(t, "done", tr.lastEvent())
	assert.False(t, tr.ended(), "a line is still being written")
	_, _ = tr.Write([]byte(`ror","ok":false}` + "\n" + "console noise\n"))
	assert.Equal(t, "error", tr.lastEvent())
	assert.True(t, tr.ended())

	line := errorLine(errors.New("no payload disk"))
	assert.Equal(t, `{"event":"error","ok":false,"error":"standbykit-writer: no payload disk"}`+"\n", string(line))
}

func TestLoadModules(t *testing.T) {
	dir := t.TempDir()
	dep := `kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/libata.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/vmw_pvscsi.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
`
	mdir := filepath.Join(dir, "lib/modules/6.1.0-57-amd64")
	require.NoError(t, os.MkdirAll(mdir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(mdir, "modules.dep"), []byte(dep), 0o644))

	got, err := modulesDir(dir, "6.1.0-57-amd64")
	require.NoError(t, err)
	assert.Equal(t, mdir, got)
	got, err = modulesDir(dir, "6.1.0-99-amd64") // the one there
	require.NoError(t, err)
	assert.Equal(t, mdir, got)
	_, err = modulesDir(t.TempDir(), "6.1.0-57-amd64")
	assert.Error(t, err)

	var loaded []string
	n, err := loadModules(mdir, map[string]string{"libata": "noacpi=1"}, func(p, params string) error {
		rel, _ := filepath.Rel(mdir, p)
		loaded = append(loaded, filepath.Base(rel))
		if params != "" {
			loaded = append(loaded, params)
		}
		if strings.HasSuffix(p, "vmw_pvscsi.ko") {
			return errors.New("no such device")
		}
		return nil
	}, t.Logf)
	assert.ErrorContains(t, err, "modules not loaded: [vmw_pvscsi]")
	assert.Equal(t, 5, n)
	assert.Equal(t, []string{"scsi_common.ko", "scsi_mod.ko", "libata.ko", "noacpi=1", "libahci.ko", "ahci.ko", "vmw_pvscsi.ko"}, loaded)
}
