package esx

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
)

// transfers collects the reports of a context's transfers by step and
// disk.
type transfers map[string][]bootpoint.Transfer

func (ts transfers) key(step string, disk int) string { return fmt.Sprintf("%s/%d", step, disk) }

func (ts transfers) ctx() context.Context {
	return bootpoint.WithProgress(context.Background(), func(t bootpoint.Transfer) {
		k := ts.key(t.Step, t.Disk)
		ts[k] = append(ts[k], t)
	})
}

// rising checks one transfer's reports: from 0 to Done == Total, rising,
// and returns the total.
func (ts transfers) rising(t *testing.T, step string, disk int) int64 {
	t.Helper()
	got := ts[ts.key(step, disk)]
	require.NotEmpty(t, got, "%s of disk %d: no report", step, disk)
	total := got[0].Total
	require.Positive(t, total)
	for i, tr := range got {
		require.Equal(t, total, tr.Total)
		if i > 0 {
			require.Greater(t, tr.Done, got[i-1].Done)
		}
	}
	require.LessOrEqual(t, got[0].Done, int64(1<<20))
	require.Equal(t, total, got[len(got)-1].Done)
	return total
}

// A base import and a boot point through the writer appliance report
// every long step: the stream encoded, its NFC upload, the payload.
func TestTransfersReportProgress(t *testing.T) {
	_, h := startHost(t)
	const size = 8 << 20
	disk := make([]byte, size)
	randomData(5, disk[:6<<20]) // incompressible: the stream is as large
	ts := transfers{}
	vm, err := h.CreateStandby(ts.ctx(), bootpoint.VMSpec{Name: "progress"}, []bootpoint.Delta{
		{Disk: 0, Size: size, Extents: []aipimage.Extent{{Off: 0, Len: size}}, Source: bytes.NewReader(disk)}})
	require.NoError(t, err)
	require.Equal(t, int64(size), ts.rising(t, bootpoint.StepStream, 0))
	require.Greater(t, ts.rising(t, bootpoint.StepUpload, 0), int64(6<<20))
	require.GreaterOrEqual(t, len(ts[ts.key(bootpoint.StepUpload, 0)]), 4)

	_, err = h.AddBootPoint(context.Background(), vm, nil, "bootpoint 0000", "{}")
	require.NoError(t, err)
	next := bytes.Clone(disk)
	randomData(6, next[1<<20:4<<20])
	ts = transfers{}
	_, err = h.AddBootPoint(ts.ctx(), vm, []bootpoint.Delta{{Disk: 0, Size: size, Extents: []aipimage.Extent{{Off: 1 << 20, Len: 3 << 20}},
		Source: bytes.NewReader(next), Base: bytes.NewReader(disk)}}, "bootpoint 0001", "{}")
	require.NoError(t, err)
	// The payload carries the changes and their guard, and travels as
	// the disk of a payload VM: disk -1, not the standby's disk 0.
	require.Greater(t, ts.rising(t, bootpoint.StepPayload, -1), int64(3<<20))
	ts.rising(t, bootpoint.StepStream, -1)
	ts.rising(t, bootpoint.StepUpload, -1)
	require.Empty(t, ts[ts.key(bootpoint.StepUpload, 0)])

	// Written by upload instead, the changed sectors of the leaf's
	// extent are what is reported.
	h.Writer = WriterUpload
	third := bytes.Clone(next)
	randomData(7, third[2<<20:5<<20])
	ts = transfers{}
	_, err = h.AddBootPoint(ts.ctx(), vm, []bootpoint.Delta{{Disk: 0, Size: size, Extents: []aipimage.Extent{{Off: 2 << 20, Len: 3 << 20}},
		Source: bytes.NewReader(third), Base: bytes.NewReader(next)}}, "bootpoint 0002", "{}")
	require.NoError(t, err)
	require.Equal(t, int64(3<<20), ts.rising(t, bootpoint.StepUpload, 0))
}
