package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx/appliance"
	"github.com/standbykit/standbykit/esx/appliance/image"
	"github.com/standbykit/standbykit/internal/appliancevm"
	"github.com/standbykit/standbykit/internal/extent"
	"github.com/standbykit/standbykit/internal/kerneltest"
	"github.com/standbykit/standbykit/internal/oracle"
)

// bootDisk is a target disk of the boot test: its content before and the
// content the payload makes of it.
type bootDisk struct {
	base, want []byte
	extents    []extent.Extent
}

// esxUnits are the SCSI units of the boot test's disks on a SCSI
// controller — the first target, the payload, the second target, in the
// order they are given to QEMU —, as package esx attaches disks to the
// appliance: the payload at unit 0, the targets at 1, 2 in their order.
var esxUnits = []int{1, 0, 2}

// TestBoot boots the appliance built by image.Build (what
// build-appliance runs) in QEMU under TCG, with a payload disk and two
// target disks on each disk controller in turn (on the SCSI ones at the
// units package esx uses, which the payload names), and checks that it
// loads its modules, finds the disks, applies the payload (the targets
// are then base ⊕ changes byte for byte), reports on its second serial
// port and powers itself off; once with a payload made for other
// content: the report tells a guard mismatch and the disks are left as
// they were; and with two empty target disks of equal size written over
// the same ranges, which only their units tell apart.
func TestBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM: not in -short")
	}
	qemu := oracle.Require(t, "qemu-system-x86_64")
	k := kerneltest.Kernel(t)
	out := t.TempDir()
	start := time.Now()
	res, err := image.Build(context.Background(), image.Options{Out: out, KernelRoot: k.Root})
	require.NoError(t, err)
	t.Logf("appliance built in %v: kernel %s, modules %v", time.Since(start).Round(time.Millisecond), k.Version, res.Modules)

	r := rand.New(rand.NewPCG(5, 6))
	disks := []*bootDisk{
		{base: randomBytes(r, 64<<20), extents: []extent.Extent{
			{Off: 0, Len: 1 << 20}, {Off: 10<<20 + 512, Len: 4<<20 + 1536}, {Off: 63 << 20, Len: 1 << 20}}},
		{base: randomBytes(r, 96<<20), extents: []extent.Extent{
			{Off: 4096, Len: 512}, {Off: 50 << 20, Len: 9 << 20}, {Off: 96<<20 - 512, Len: 512}}},
	}
	// Two empty disks of a size, written over the same ranges: the same
	// guard for both.
	sameExtents := []extent.Extent{{Off: 0, Len: 1 << 20}, {Off: 10<<20 + 512, Len: 4<<20 + 1536}, {Off: 47 << 20, Len: 1 << 20}}
	equal := []*bootDisk{
		{base: make([]byte, 48<<20), extents: sameExtents},
		{base: make([]byte, 48<<20), extents: sameExtents},
	}
	for _, d := range append(append([]*bootDisk(nil), disks...), equal...) {
		d.want = bytes.Clone(d.base)
		for _, e := range d.extents {
			copy(d.want[e.Off:e.End()], randomBytes(r, int(e.Len)))
		}
	}
	// makePayload makes the payload for ds, target i at SCSI unit
	// units[i], with the bases given.
	makePayload := func(ds []*bootDisk, units []int, bases ...[]byte) ([]byte, string) {
		var targets []appliance.Target
		for i, d := range ds {
			targets = append(targets, appliance.Target{Capacity: int64(len(d.base)), Extents: d.extents,
				Source: bytes.NewReader(d.want), Base: bytes.NewReader(bases[i]), Unit: units[i]})
		}
		var p bytes.Buffer
		id, _, err := appliance.WritePayload(context.Background(), &p, targets)
		require.NoError(t, err)
		return p.Bytes(), id
	}
	payload, id := makePayload(disks, []int{1, 2}, disks[0].base, disks[1].base)
	other := bytes.Clone(disks[1].base)
	other[50<<20+12345] ^= 0x40
	wrongPayload, wrongID := makePayload(disks, []int{1, 2}, disks[0].base, other)
	equalPayload, equalID := makePayload(equal, []int{1, 2}, equal[0].base, equal[1].base)
	// On LSI Logic SAS the unit is the disk's phy, which Linux's SCSI
	// target numbers (0, 1, 2 in the order found) are not: units with a
	// gap, and the targets in the reverse order of their units, tell.
	gapPayload, gapID := makePayload(equal, []int{5, 2}, equal[0].base, equal[1].base)

	type bootCase struct {
		name, controller string
		disks            []*bootDisk
		payload          []byte
		id               string
		ok               bool
		iso              bool
		// units are the SCSI units of the first target, the payload and
		// the second target (esxUnits on a SCSI controller if nil).
		units []int
	}
	cases := []bootCase{
		{name: "pvscsi", controller: "pvscsi", disks: disks, payload: payload, id: id, ok: true},
		{name: "lsisas", controller: "lsisas", disks: disks, payload: payload, id: id, ok: true},
		// No units: the payload's are not used, the guards tell.
		{name: "ahci", controller: "ahci", disks: disks, payload: payload, id: id, ok: true},
		{name: "nvme", controller: "nvme", disks: disks, payload: payload, id: id, ok: true},
		{name: "guard-mismatch", controller: "pvscsi", disks: disks, payload: wrongPayload, id: wrongID},
		// As on ESXi: booted from the ISO image with ESXi's command line,
		// the report on the one serial port.
		{name: "iso", controller: "pvscsi", disks: disks, payload: payload, id: id, ok: true, iso: true},
		// Disks the guards cannot tell apart: the units do.
		{name: "pvscsi-equal", controller: "pvscsi", disks: equal, payload: equalPayload, id: equalID, ok: true},
		{name: "lsisas-equal-gap", controller: "lsisas", disks: equal, payload: gapPayload, id: gapID, ok: true, units: []int{5, 0, 2}},
	}
	// A batch: two payloads (two standby VMs), each with its targets on a
	// pvscsi controller of its own, at the same units.
	t.Run("pvscsi-batch", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		type group struct {
			payload []byte
			id      string
			disks   []*bootDisk
		}
		groups := []group{{payload, id, disks}, {equalPayload, equalID, equal}}
		var files [][]string
		var units [][]int
		for g, gr := range groups {
			names := []string{filepath.Join(dir, fmt.Sprintf("g%d-disk0.img", g)), filepath.Join(dir, fmt.Sprintf("g%d-payload.img", g)), filepath.Join(dir, fmt.Sprintf("g%d-disk1.img", g))}
			require.NoError(t, os.WriteFile(names[0], gr.disks[0].base, 0o644))
			require.NoError(t, os.WriteFile(names[1], gr.payload, 0o644))
			require.NoError(t, os.WriteFile(names[2], gr.disks[1].base, 0o644))
			files = append(files, names)
			units = append(units, esxUnits)
		}
		args, err := appliancevm.AttachPVSCSI(units, files)
		require.NoError(t, err)
		console, report := boot(t, qemu, res, "", dir, args)
		for g, gr := range groups {
			require.NoError(t, appliance.ReadReport(bytes.NewReader(report), gr.id), "payload %d; console:\n%s", g, appliancevm.Tail(console, 40))
			assert.Contains(t, console, "holds payload "+gr.id)
			for i, f := range []string{files[g][0], files[g][2]} {
				got, err := os.ReadFile(f)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(gr.disks[i].want, got), "group %d disk %d is base ⊕ changes", g, i)
			}
		}
		assert.Contains(t, console, "reboot: Power down")
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			iso := ""
			if c.iso {
				iso = buildISO(t, out)
			}
			t.Parallel()
			dir := t.TempDir()
			// The payload between the targets, so that it is neither the
			// first disk nor the last.
			files := []string{filepath.Join(dir, "disk0.img"), filepath.Join(dir, "payload.img"), filepath.Join(dir, "disk1.img")}
			require.NoError(t, os.WriteFile(files[0], c.disks[0].base, 0o644))
			require.NoError(t, os.WriteFile(files[1], c.payload, 0o644))
			require.NoError(t, os.WriteFile(files[2], c.disks[1].base, 0o644))
			units := c.units
			if units == nil && appliancevm.HasUnits(c.controller) {
				units = esxUnits
			}
			args, err := appliancevm.AttachAt(c.controller, units, files...)
			require.NoError(t, err)

			console, report := boot(t, qemu, res, iso, dir, args)

			// The report: JSON lines (after an empty one), the last one
			// the result.
			var events []string
			var guardUnits []int // of the guard lines that matched (-1: no unit)
			sc := bufio.NewScanner(bytes.NewReader(report))
			for sc.Scan() {
				if len(bytes.TrimSpace(sc.Bytes())) == 0 {
					continue
				}
				var l appliance.ReportLine
				require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "report line %q", sc.Text())
				events = append(events, l.Event)
				if l.Event == "guard" && l.OK {
					u := -1
					if l.Unit != nil {
						u = *l.Unit
					}
					guardUnits = append(guardUnits, u)
				}
			}
			t.Logf("report events: %v, units %v", events, guardUnits)
			require.NotEmpty(t, events, "console:\n%s", appliancevm.Tail(console, 40))
			reportErr := appliance.ReadReport(bytes.NewReader(report), c.id)

			// What the console tells: every module loaded, the disks
			// found, a power-off rather than a panic.
			saw := func(want string, yes bool) {
				t.Helper()
				if c.iso {
					return // the console is on the screen
				}
				if strings.Contains(console, want) != yes {
					t.Errorf("the console %s %q:\n%s", map[bool]string{true: "does not tell", false: "tells"}[yes], want, appliancevm.Tail(console, 40))
				}
			}
			saw(fmt.Sprintf("standbykit-writer: %d modules loaded", len(res.Modules)), true)
			saw("modules not loaded", false)
			saw("holds payload "+c.id, true)
			saw("reboot: Power down", true)
			saw("Kernel panic", false)
			// The units: on the SCSI controllers, the targets'; none
			// elsewhere.
			if units != nil {
				saw(fmt.Sprintf(", unit %d)", units[0]), true)
				saw(fmt.Sprintf(", unit %d)", units[2]), true)
				saw("no SCSI units", false)
			} else {
				saw("no SCSI units", true)
			}
			got := make([][]byte, 2)
			for i, f := range []string{files[0], files[2]} {
				var err error
				got[i], err = os.ReadFile(f)
				require.NoError(t, err)
			}
			p, err := os.ReadFile(files[1])
			require.NoError(t, err)
			assert.True(t, bytes.Equal(c.payload, p), "the payload disk is never written")
			if c.ok {
				require.NoError(t, reportErr, "console:\n%s", appliancevm.Tail(console, 40))
				assert.Equal(t, "done", events[len(events)-1])
				saw("standbykit-writer: done", true)
				for i, d := range c.disks {
					assert.True(t, bytes.Equal(d.want, got[i]), "disk %d is base ⊕ changes", i)
				}
				if units != nil {
					assert.Equal(t, []int{units[0], units[2]}, guardUnits, "the report tells the units")
				} else {
					assert.Equal(t, []int{-1, -1}, guardUnits, "no units reported")
				}
			} else {
				require.ErrorIs(t, reportErr, appliance.ErrGuard, "console:\n%s", appliancevm.Tail(console, 40))
				assert.Equal(t, "error", events[len(events)-1])
				saw("standbykit-writer: failed", true)
				for i, d := range c.disks {
					assert.True(t, bytes.Equal(d.base, got[i]), "disk %d is left as it was", i)
				}
			}
		})
	}
}

// buildISO makes the ISO image of the boot files in out, once, with
// ESXi's kernel command line; it skips the test (fails in CI) without
// xorriso or isolinux.
func buildISO(t *testing.T, out string) string {
	t.Helper()
	oracle.Require(t, "xorriso")
	for _, f := range []string{image.IsolinuxBin, image.LdlinuxC32} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("STANDBYKIT_REQUIRE_ORACLES") == "1" {
				t.Fatalf("%s is required here (apt-get install isolinux syslinux-common): %v", f, err)
			}
			t.Skipf("no %s (apt-get install isolinux syslinux-common)", f)
		}
	}
	iso := filepath.Join(out, image.ISOFile)
	if _, err := os.Stat(iso); err == nil {
		return iso
	}
	f, err := image.BuildISO(context.Background(), out, image.ESXiCmdline)
	require.NoError(t, err)
	return f.Path
}

// boot runs the appliance in QEMU with args added (appliancevm.Boot),
// the console on the first serial port and the report on the second,
// and returns both once it has powered itself off. With iso, QEMU boots
// that image from its CD-ROM drive instead, and the report is on the one
// serial port (the console on the screen, none).
func boot(t *testing.T, qemu string, res *image.Result, iso, dir string, args []string) (console string, report []byte) {
	t.Helper()
	r, err := appliancevm.Boot(context.Background(), appliancevm.VM{
		Qemu: qemu, Vmlinuz: res.Vmlinuz, Initrd: res.Initrd, ISO: iso, Dir: dir, Args: args})
	require.NoError(t, err)
	t.Logf("booted, applied and powered off in %v", r.Elapsed.Round(100*time.Millisecond))
	return r.Console, r.Report
}
