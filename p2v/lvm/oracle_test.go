package lvm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lvmOracle runs the real LVM2 tools on loop devices over image files,
// confined by its own lvm.conf (LVM_SYSTEM_DIR) to those devices and
// with --driverloaded n, so that no device-mapper is needed or touched.
type lvmOracle struct {
	t    *testing.T
	dir  string
	imgs []string // image files
	devs []string // their loop devices
}

// newLVMOracle skips the test unless the LVM2 tools are installed, we
// are root and loop devices can be attached (Debian package lvm2; CI's
// fixed package list does not have it, so there the test skips).
func newLVMOracle(t *testing.T, sizes ...int64) *lvmOracle {
	// Opt-in: it needs root, the lvm2 package and loop devices of the
	// machine, none of which the default test run may assume.
	if os.Getenv("STANDBYKIT_LVM_ORACLE") != "1" {
		t.Skip("comparison with the LVM2 tools is opt-in: STANDBYKIT_LVM_ORACLE=1 (root, lvm2, loop devices)")
	}
	for _, tool := range []string{"pvcreate", "vgcreate", "lvcreate", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s missing (apt-get install lvm2): skipping the comparison with the LVM2 tools", tool)
		}
	}
	if os.Getuid() != 0 {
		t.Skip("not root: cannot attach loop devices for the LVM2 tools")
	}
	o := &lvmOracle{t: t, dir: t.TempDir()}
	for i, size := range sizes {
		img := filepath.Join(o.dir, fmt.Sprintf("pv%d.img", i))
		require.NoError(t, os.WriteFile(img, nil, 0o600))
		require.NoError(t, os.Truncate(img, size))
		out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
		if err != nil {
			t.Skipf("cannot attach a loop device: %v: %s", err, out)
		}
		dev := strings.TrimSpace(string(out))
		t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })
		o.imgs = append(o.imgs, img)
		o.devs = append(o.devs, dev)
	}
	var accept []string
	for _, d := range o.devs {
		accept = append(accept, strconv.Quote("a|^"+d+"$|"))
	}
	conf := fmt.Sprintf(`devices {
	filter = [ %s, "r|.*|" ]
	global_filter = [ %s, "r|.*|" ]
	obtain_device_list_from_udev = 0
	external_device_info_source = "none"
	use_devicesfile = 0
	hints = "none"
}
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
backup { backup = 0 archive = 0 }
global { locking_dir = %q }
`, strings.Join(accept, ", "), strings.Join(accept, ", "), filepath.Join(o.dir, "lock"))
	require.NoError(t, os.WriteFile(filepath.Join(o.dir, "lvm.conf"), []byte(conf), 0o600))
	return o
}

// run runs an LVM command (a subcommand of lvm) and returns its output.
func (o *lvmOracle) run(args ...string) []byte {
	o.t.Helper()
	cmd := exec.Command("lvm", append([]string{args[0], "--driverloaded", "n"}, args[1:]...)...)
	cmd.Env = append(os.Environ(), "LVM_SYSTEM_DIR="+o.dir, "LVM_SUPPRESS_FD_WARNINGS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		o.t.Fatalf("lvm %v: %v\n%s%s", args, err, out, stderr.Bytes())
	}
	return out
}

// report runs an lvs/pvs report as JSON and returns its rows.
func (o *lvmOracle) report(args ...string) []map[string]string {
	o.t.Helper()
	out := o.run(append(args, "--reportformat", "json", "--units", "b", "--nosuffix")...)
	var r struct {
		Report []map[string][]map[string]string `json:"report"`
	}
	require.NoError(o.t, json.Unmarshal(out, &r), "%s", out)
	for _, rows := range r.Report[0] {
		return rows
	}
	return nil
}

func (o *lvmOracle) readPV(i int) *PV {
	o.t.Helper()
	b, err := os.ReadFile(o.imgs[i])
	require.NoError(o.t, err)
	pv, err := ReadPV(bytes.NewReader(b), int64(len(b)))
	require.NoError(o.t, err, o.devs[i])
	return pv
}

// TestOracleLVMTools lets LVM2 itself write the label, headers and
// metadata (linear, multi-segment and striped LVs on two PVs, one with
// two metadata areas), then compares what ReadPV finds with what pvs and
// lvs report: PV UUIDs, pe_start, and each segment's PE ranges, stripe
// count and stripe size, and ToPV at every segment start.
func TestOracleLVMTools(t *testing.T) {
	o := newLVMOracle(t, 8<<20, 8<<20)
	d0, d1 := o.devs[0], o.devs[1]
	o.run("pvcreate", "-y", d0)
	o.run("pvcreate", "-y", "--pvmetadatacopies", "2", d1)
	o.run("vgcreate", "-s", "64k", "tvg", d0, d1)
	o.run("lvcreate", "-an", "-Zn", "-y", "-l", "10", "-n", "root", "tvg", d0)
	o.run("lvcreate", "-an", "-Zn", "-y", "-i", "2", "-I", "8k", "-l", "8", "-n", "data", "tvg")
	o.run("lvcreate", "-an", "-Zn", "-y", "-l", "3", "-n", "swap", "tvg", d0)
	o.run("lvextend", "-l", "+6", "tvg/root", d1)
	o.run("lvextend", "-l", "+2", "tvg/root", d0)

	p0, p1 := o.readPV(0), o.readPV(1)
	require.NotNil(t, p0.VG)
	assert.Len(t, p1.MDAs, 2)
	assert.Equal(t, p0.VG, p1.VG)
	vg := p0.VG
	assert.Equal(t, "tvg", vg.Name)
	assert.Equal(t, int64(64<<10), vg.ExtentSize)

	byDev := map[string]*PVInfo{}
	for _, row := range o.report("pvs", "-o", "pv_name,pv_uuid,pe_start") {
		p, err := vg.PV(row["pv_uuid"])
		require.NoError(t, err, row["pv_uuid"])
		assert.Equal(t, row["pe_start"], strconv.FormatInt(p.PEStart, 10))
		byDev[row["pv_name"]] = p
	}
	assert.Equal(t, p0.UUID, byDev[d0].UUID)
	assert.Equal(t, p1.UUID, byDev[d1].UUID)

	rows := o.report("lvs", "--segments", "-o", "lv_name,segtype,seg_start_pe,seg_size_pe,seg_pe_ranges,stripes,stripe_size")
	require.Len(t, rows, 5) // root has three segments
	for _, row := range rows {
		lv, err := vg.LV(row["lv_name"])
		require.NoError(t, err)
		start, _ := strconv.ParseInt(row["seg_start_pe"], 10, 64)
		var seg *Segment
		for i := range lv.Segments {
			if lv.Segments[i].StartExtent == start {
				seg = &lv.Segments[i]
			}
		}
		require.NotNil(t, seg, "%v", row)
		wantType := seg.Type // lvs calls one-stripe "striped" segments linear
		if seg.Type == "striped" && seg.StripeCount == 1 {
			wantType = "linear"
		}
		assert.Equal(t, row["segtype"], wantType)
		assert.Equal(t, row["seg_size_pe"], strconv.FormatInt(seg.ExtentCount, 10))
		assert.Equal(t, row["stripes"], strconv.FormatInt(seg.StripeCount, 10))
		assert.Equal(t, row["stripe_size"], strconv.FormatInt(seg.StripeSize, 10))
		// "/dev/loop0:10-13 /dev/loop1:0-3"
		ranges := strings.Fields(row["seg_pe_ranges"])
		require.Len(t, seg.Stripes, len(ranges))
		per := seg.ExtentCount / seg.StripeCount
		for i, r := range ranges {
			dev, pes, _ := strings.Cut(r, ":")
			want := fmt.Sprintf("%d-%d", seg.Stripes[i].StartPE, seg.Stripes[i].StartPE+per-1)
			assert.Equal(t, want, pes, "%s", row["lv_name"])
			assert.Equal(t, byDev[dev].Name, seg.Stripes[i].PV)
		}
		first, _, _ := strings.Cut(ranges[0], ":")
		pe, _ := strconv.ParseInt(strings.Split(strings.Split(ranges[0], ":")[1], "-")[0], 10, 64)
		pvName, off, _, err := vg.ToPV(lv.Name, start*vg.ExtentSize)
		require.NoError(t, err)
		assert.Equal(t, byDev[first].Name, pvName)
		assert.Equal(t, byDev[first].PEStart+pe*vg.ExtentSize, off)
	}

	// vgcfgbackup's text describes the same VG.
	backup := filepath.Join(o.dir, "tvg.vg")
	o.run("vgcfgbackup", "-f", backup, "tvg")
	text, err := os.ReadFile(backup)
	require.NoError(t, err)
	fromBackup, err := ParseMetadata(text)
	require.NoError(t, err)
	assert.Equal(t, vg, fromBackup)
}

// TestOracleLVMWrap has LVM2 rewrite the metadata of a PV with a small
// metadata area until its circular buffer wraps, reading it after each
// write.
func TestOracleLVMWrap(t *testing.T) {
	o := newLVMOracle(t, 4<<20)
	d := o.devs[0]
	o.run("pvcreate", "-y", "--metadatasize", "16k", "--dataalignment", "64k", d)
	o.run("vgcreate", "-s", "64k", "wvg", d)
	o.run("lvcreate", "-an", "-Zn", "-y", "-l", "2", "-n", "x", "wvg")
	tag := strings.Repeat("t", 200)
	wrapped := false
	for i := 0; i < 60 && !wrapped; i++ {
		// 200-character tags make each text ~250 bytes longer
		o.run("lvchange", "--addtag", fmt.Sprintf("%s%d", tag, i), "wvg/x")
		pv := o.readPV(0)
		l := pv.MDAs[0].Locations[0]
		wrapped = l.Offset+l.Size > pv.MDAs[0].Size
		lv, err := pv.VG.LV("x")
		require.NoError(t, err)
		assert.Contains(t, lv.Status, "VISIBLE")
		assert.Equal(t, int64(i+3), pv.VG.Seqno)
		assert.Contains(t, string(pv.Metadata), fmt.Sprintf("%s%d", tag, i))
	}
	assert.True(t, wrapped, "the metadata never wrapped")
}
