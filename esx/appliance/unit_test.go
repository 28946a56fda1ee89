package appliance_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx/appliance"
)

// at returns tg at SCSI unit u.
func at(tg appliance.Target, u int) appliance.Target {
	tg.Unit = u
	return tg
}

// zeroTarget is a target whose disk is all zero before the change.
func zeroTarget(capacity int64, src byte, exts ...ext) appliance.Target {
	return appliance.Target{Capacity: capacity, Extents: exts, Source: appliance.Pattern{Seed: src}, Base: appliance.NewMemDisk(capacity, nil)}
}

// zeroExpected is the content of an all-zero disk after tg was applied.
func zeroExpected(tg appliance.Target) []byte {
	b := make([]byte, tg.Capacity)
	for _, e := range tg.Extents {
		_, _ = tg.Source.ReadAt(b[e.Off:e.End()], e.Off)
	}
	return b
}

// guardUnits returns the unit of each guard line of a report (-1: none).
func guardUnits(t *testing.T, report []byte) []int {
	var out []int
	for _, l := range events(t, report) {
		if l.Event != "guard" {
			continue
		}
		u := -1
		if l.Unit != nil {
			u = *l.Unit
		}
		out = append(out, u)
	}
	return out
}

// Two empty data disks of equal size, written over the same ranges: the
// guards cannot tell them apart, the units do.
func TestApplyUnitsTellEqualDisks(t *testing.T) {
	exts := []ext{{Off: 0, Len: 4 * kib}, {Off: 512 * kib, Len: 64 * kib}}
	t0, t1 := zeroTarget(mib, 10, exts...), zeroTarget(mib, 11, exts...)
	payload, id := build(t, at(t0, 1), at(t1, 2))

	// The disks in another order than their units.
	d2, d1 := appliance.NewMemDisk(mib, nil).AtUnit(2), appliance.NewMemDisk(mib, nil).AtUnit(1)
	var report bytes.Buffer
	res, err := run(payload, disks(d2, d1), &report)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 0}, res.Targets)
	assert.True(t, d1.Equal(0, zeroExpected(t0)), "target 0 on the disk at unit 1")
	assert.True(t, d2.Equal(0, zeroExpected(t1)), "target 1 on the disk at unit 2")
	require.NoError(t, appliance.ReadReport(bytes.NewReader(report.Bytes()), id))
	assert.Equal(t, []int{1, 2}, guardUnits(t, report.Bytes()), "the guard lines tell the units")
	for _, l := range events(t, report.Bytes()) {
		if l.Event == "write" || l.Event == "verify" {
			require.NotNil(t, l.Unit)
			assert.Equal(t, *l.Target+1, *l.Unit)
		}
	}

	// Without units, as before: ambiguous, nothing written.
	noUnits, _ := build(t, t0, t1)
	for name, c := range map[string]struct {
		payload []byte
		disks   []*appliance.MemDisk
		wrap    func(*appliance.MemDisk) appliance.Disk
	}{
		"disks that do not know their units": {payload, []*appliance.MemDisk{appliance.NewMemDisk(mib, nil), appliance.NewMemDisk(mib, nil)},
			func(d *appliance.MemDisk) appliance.Disk { return d }},
		"disks that are not Addressed": {payload, []*appliance.MemDisk{appliance.NewMemDisk(mib, nil).AtUnit(1), appliance.NewMemDisk(mib, nil).AtUnit(2)},
			func(d *appliance.MemDisk) appliance.Disk { return plainDisk{d} }},
		"targets without units": {noUnits, []*appliance.MemDisk{appliance.NewMemDisk(mib, nil).AtUnit(1), appliance.NewMemDisk(mib, nil).AtUnit(2)},
			func(d *appliance.MemDisk) appliance.Disk { return d }},
	} {
		t.Run(name, func(t *testing.T) {
			before := contents(c.disks...)
			var ds []appliance.Disk
			for _, d := range c.disks {
				ds = append(ds, c.wrap(d))
			}
			_, err := run(c.payload, ds, nil)
			require.ErrorIs(t, err, appliance.ErrGuard)
			assert.ErrorContains(t, err, "ambiguous")
			unchanged(t, before, c.disks...)
		})
	}
}

// plainDisk hides a disk's Unit method: a Disk that is not Addressed.
type plainDisk struct{ appliance.Disk }

// noUnit is a disk that implements Addressed but does not know its unit.
type noUnit struct{ *appliance.MemDisk }

func (noUnit) Unit() (int, bool) { return 3, false }

func TestApplyUnitPicksGuardChecks(t *testing.T) {
	tg := target(mib, 1, 2, ext{Off: 0, Len: 512}, ext{Off: 64 * kib, Len: 64 * kib})
	payload, _ := build(t, at(tg, 1))
	for _, c := range []struct {
		name  string
		disks []*appliance.MemDisk
		want  string
	}{
		// The disk at unit 2 would match the guard: the unit decides.
		{"the disk at the unit does not match", []*appliance.MemDisk{
			appliance.NewPatternDisk(mib, 5).AtUnit(1), appliance.NewPatternDisk(mib, 1).AtUnit(2)},
			"none of disks [0] at SCSI unit 1 (capacity 1048576) matches"},
		{"no disk at the unit", []*appliance.MemDisk{
			appliance.NewPatternDisk(mib, 1).AtUnit(2), appliance.NewPatternDisk(mib, 1).AtUnit(3)},
			"no disk is at SCSI unit 1"},
		// A disk of the target's content without a unit is no candidate
		// once the disks tell units.
		{"the matching disk has no unit", []*appliance.MemDisk{
			appliance.NewPatternDisk(mib, 1), appliance.NewPatternDisk(mib, 5).AtUnit(0)},
			"no disk is at SCSI unit 1"},
		{"the disk at the unit has another capacity", []*appliance.MemDisk{
			appliance.NewPatternDisk(2*mib, 1).AtUnit(1), appliance.NewPatternDisk(mib, 1).AtUnit(2)},
			"disk 0 at SCSI unit 1 has capacity 2097152, not 1048576"},
		{"two disks at the unit, both matching", []*appliance.MemDisk{
			appliance.NewPatternDisk(mib, 1).AtUnit(1), appliance.NewPatternDisk(mib, 1).AtUnit(1)},
			"disks [0 1] at SCSI unit 1 all match (ambiguous)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := contents(c.disks...)
			var report bytes.Buffer
			res, err := run(payload, disks(c.disks...), &report)
			require.ErrorIs(t, err, appliance.ErrGuard)
			assert.ErrorContains(t, err, c.want)
			assert.Nil(t, res.Targets)
			unchanged(t, before, c.disks...)
			assert.Equal(t, []string{"start", "guard", "error"}, eventNames(events(t, report.Bytes())))
		})
	}

	// Two disks at the unit (say, on two controllers): the guard picks.
	wrong, right := appliance.NewPatternDisk(mib, 5).AtUnit(1), appliance.NewPatternDisk(mib, 1).AtUnit(1)
	res, err := run(payload, disks(wrong, right), nil)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, res.Targets)
	assert.Zero(t, wrong.Writes())
}

// When no disk knows its unit (AHCI, NVMe), or a target has none, the
// capacity and the guard match as they always did.
func TestApplyUnitsUnknown(t *testing.T) {
	tg := target(mib, 1, 2, ext{Off: 0, Len: 512}, ext{Off: 64 * kib, Len: 64 * kib})
	payload, _ := build(t, at(tg, 1))

	wrong, right := appliance.NewPatternDisk(mib, 5), appliance.NewPatternDisk(mib, 1)
	var report bytes.Buffer
	res, err := appliance.Apply(t.Context(), bytes.NewReader(payload), int64(len(payload)), []appliance.Disk{noUnit{wrong}, right}, &report)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, res.Targets)
	assert.True(t, right.Equal(0, expected(tg, 1)))
	assert.Zero(t, wrong.Writes())
	assert.Equal(t, []int{-1}, guardUnits(t, report.Bytes()), "no unit on the report")

	// Ambiguous as ever.
	ds := []*appliance.MemDisk{appliance.NewPatternDisk(mib, 1), appliance.NewPatternDisk(mib, 1)}
	before := contents(ds...)
	_, err = run(payload, disks(ds...), nil)
	require.ErrorIs(t, err, appliance.ErrGuard)
	unchanged(t, before, ds...)

	// A target of unknown unit among disks that know theirs: any disk of
	// its capacity is a candidate; the other target goes by its unit.
	t0 := zeroTarget(mib, 10, ext{Off: 0, Len: 4 * kib})
	t1 := target(2*mib, 3, 4, ext{Off: mib, Len: 4 * kib})
	mixed, id := build(t, at(t0, 2), t1)
	d0, d1, d2 := appliance.NewPatternDisk(2*mib, 3).AtUnit(1), appliance.NewMemDisk(mib, nil).AtUnit(2), appliance.NewMemDisk(mib, nil)
	report.Reset()
	res, err = run(mixed, disks(d0, d1, d2), &report)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 0}, res.Targets)
	assert.True(t, d1.Equal(0, zeroExpected(t0)))
	assert.True(t, d0.Equal(0, expected(t1, 3)))
	assert.Zero(t, d2.Writes())
	require.NoError(t, appliance.ReadReport(bytes.NewReader(report.Bytes()), id))
	assert.Equal(t, []int{2, 1}, guardUnits(t, report.Bytes()), "a disk's unit is reported even when the target had none")
}
