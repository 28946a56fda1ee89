package appliance_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx/appliance"
)

// batchDisks are four empty disks of one capacity, two on controller 10
// and two on controller 20, at units 1 and 2 on each: two standby VMs'
// leaves in one run of the appliance.
func batchDisks() []*appliance.MemDisk {
	return []*appliance.MemDisk{
		appliance.NewMemDisk(mib, nil).AtUnit(1).OnController(10),
		appliance.NewMemDisk(mib, nil).AtUnit(2).OnController(10),
		appliance.NewMemDisk(mib, nil).AtUnit(1).OnController(20),
		appliance.NewMemDisk(mib, nil).AtUnit(2).OnController(20),
	}
}

func applyBatch(t *testing.T, payloads [][]byte, controllers []int, ds []*appliance.MemDisk) ([]appliance.Result, []byte, error) {
	t.Helper()
	var ps []appliance.Payload
	for i, p := range payloads {
		ps = append(ps, appliance.Payload{Data: bytes.NewReader(p), Size: int64(len(p)), Controller: controllers[i]})
	}
	var report bytes.Buffer
	res, err := appliance.ApplyBatch(context.Background(), ps, disks(ds...), &report)
	require.Len(t, res, len(payloads))
	return res, report.Bytes(), err
}

func TestApplyBatch(t *testing.T) {
	// Every target has the same capacity, ranges and guard: only the
	// controllers tell the two payloads' disks apart.
	exts := []ext{{Off: 0, Len: 4 * kib}, {Off: mib - 512, Len: 512}}
	a0, a1 := at(zeroTarget(mib, 11, exts...), 1), at(zeroTarget(mib, 12, exts...), 2)
	b0, b1 := at(zeroTarget(mib, 21, exts...), 1), at(zeroTarget(mib, 22, exts...), 2)
	pa, ida := build(t, a0, a1)
	pb, idb := build(t, b0, b1)
	ds := batchDisks()
	// The payloads in the other order than their controllers.
	res, report, err := applyBatch(t, [][]byte{pb, pa}, []int{20, 10}, ds)
	require.NoError(t, err)
	assert.Equal(t, idb, res[0].PayloadID)
	assert.Equal(t, []int{2, 3}, res[0].Targets, "indexes into the whole disk list")
	assert.Equal(t, []int{0, 1}, res[1].Targets)
	for i, tg := range []appliance.Target{a0, a1, b0, b1} {
		assert.True(t, ds[i].Equal(0, zeroExpected(tg)), "disk %d", i)
	}
	assert.NoError(t, appliance.ReadReport(bytes.NewReader(report), ida))
	assert.NoError(t, appliance.ReadReport(bytes.NewReader(report), idb))
}

func TestApplyBatchOneFails(t *testing.T) {
	exts := []ext{{Off: 8 * kib, Len: 16 * kib}}
	a := at(zeroTarget(mib, 11, exts...), 1)
	b := at(target(mib, 7, 21, exts...), 1) // expects content the disk does not have
	pa, ida := build(t, a)
	pb, idb := build(t, b)
	ds := batchDisks()
	res, report, err := applyBatch(t, [][]byte{pb, pa}, []int{20, 10}, ds)
	require.ErrorIs(t, err, appliance.ErrGuard)
	assert.Contains(t, err.Error(), "payload 1 of 2 (controller 20)")
	assert.NotContains(t, err.Error(), "payload 2 of 2")
	assert.Equal(t, []int{0}, res[1].Targets)
	assert.True(t, ds[0].Equal(0, zeroExpected(a)), "the other payload is written")
	for _, d := range ds[1:] {
		assert.Zero(t, d.Writes())
	}
	assert.NoError(t, appliance.ReadReport(bytes.NewReader(report), ida))
	err = appliance.ReadReport(bytes.NewReader(report), idb)
	assert.ErrorIs(t, err, appliance.ErrReport)
	assert.ErrorIs(t, err, appliance.ErrGuard)
}

func TestApplyBatchAmbiguousControllers(t *testing.T) {
	exts := []ext{{Off: 0, Len: 4 * kib}}
	pa, _ := build(t, at(zeroTarget(mib, 11, exts...), 1))
	pb, _ := build(t, at(zeroTarget(mib, 21, exts...), 1))
	for name, controllers := range map[string][]int{"shared": {10, 10}, "unknown": {-1, 20}} {
		t.Run(name, func(t *testing.T) {
			ds := batchDisks()
			_, _, err := applyBatch(t, [][]byte{pa, pb}, controllers, ds)
			require.ErrorIs(t, err, appliance.ErrGuard)
			assert.Contains(t, err.Error(), "payload 1 of 2")
			for i, d := range ds {
				if name == "unknown" && i == 2 {
					continue // payload b, alone on controller 20
				}
				assert.Zero(t, d.Writes(), "disk %d", i)
			}
		})
	}
}

func TestApplyBatchOnePayloadTakesAnyDisk(t *testing.T) {
	// One payload: as Apply, whatever controllers the disks are on.
	tg := at(zeroTarget(mib, 11, ext{Off: 0, Len: 4 * kib}), 2)
	p, _ := build(t, tg)
	ds := batchDisks()
	res, _, err := applyBatch(t, [][]byte{p}, []int{-1}, ds[2:])
	require.NoError(t, err)
	assert.Equal(t, []int{1}, res[0].Targets)
	assert.True(t, ds[3].Equal(0, zeroExpected(tg)))
}
