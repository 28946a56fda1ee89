package bootpoint_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
)

// requireRising checks a transfer's reports: from a first one to
// Done == Total, rising, with the same total.
func requireRising(t *testing.T, got []bootpoint.Transfer, total int64) {
	t.Helper()
	require.NotEmpty(t, got)
	for i, tr := range got {
		require.Equal(t, total, tr.Total, "report %d", i)
		if i > 0 {
			require.Greater(t, tr.Done, got[i-1].Done, "report %d", i)
		}
	}
	require.Equal(t, total, got[len(got)-1].Done)
}

func TestProgressThinsReports(t *testing.T) {
	for _, tc := range []struct {
		name           string
		total, chunk   int64
		minN, maxN     int
		minGap, maxGap int64
	}{
		// A short transfer reports its start and end only.
		{"100 KiB", 100 << 10, 4 << 10, 2, 2, 0, 100 << 10},
		// 1/200 of the total apart.
		{"1 GiB", 1 << 30, 64 << 10, 150, 202, (1 << 30) / 200, (1<<30)/200 + 64<<10},
		// A huge one still reports every 64 MiB.
		{"1 TiB", 1 << 40, 16 << 20, 1 << 40 / (80 << 20), 1<<40/(64<<20) + 2, 64 << 20, 80 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []bootpoint.Transfer
			ctx := bootpoint.WithProgress(context.Background(), func(tr bootpoint.Transfer) { got = append(got, tr) })
			report := bootpoint.Progress(ctx, bootpoint.StepUpload, 2)
			for done := int64(0); done < tc.total; done += tc.chunk {
				report(done, tc.total)
			}
			report(tc.total, tc.total)
			report(tc.total, tc.total) // the end once only
			require.Equal(t, int64(0), got[0].Done)
			requireRising(t, got, tc.total)
			require.GreaterOrEqual(t, len(got), tc.minN)
			require.LessOrEqual(t, len(got), tc.maxN)
			for i := 1; i < len(got)-1; i++ {
				gap := got[i].Done - got[i-1].Done
				require.GreaterOrEqual(t, gap, tc.minGap, "report %d", i)
				require.LessOrEqual(t, gap, tc.maxGap, "report %d", i)
			}
			for _, tr := range got {
				require.Equal(t, bootpoint.StepUpload, tr.Step)
				require.Equal(t, 2, tr.Disk)
			}
		})
	}
	// Without a report function in the context, reporting costs nothing.
	bootpoint.Progress(context.Background(), bootpoint.StepVerify, 0)(1, 2)
	require.Nil(t, bootpoint.ProgressOf(context.Background()))
}

// Verification, which reads a whole boot point back, reports how far it
// has come on each disk.
func TestVerifyReportsProgress(t *testing.T) {
	set := newSample(t, 1)
	var events []bootpoint.Event
	s := &bootpoint.Standby{Hypervisor: &hypervisortest.Memory{}, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "web01"},
		Progress: func(e bootpoint.Event) { events = append(events, e) }}
	_, err := s.Sync(context.Background(), set)
	require.NoError(t, err)
	_, bps, err := s.BootPoints(context.Background())
	require.NoError(t, err)
	events = nil
	require.NoError(t, s.Verify(context.Background(), set, bps[1]))
	var got []bootpoint.Transfer
	for _, e := range events {
		if e.Total == 0 {
			continue // the step's announcement, not a transfer report
		}
		require.Equal(t, bootpoint.StepVerify, e.Step)
		require.Equal(t, 1, e.Sequence)
		require.Equal(t, 0, e.Disk)
		got = append(got, bootpoint.Transfer{Step: e.Step, Disk: e.Disk, Done: e.Done, Total: e.Total})
	}
	requireRising(t, got, 4<<20)
	require.Len(t, got, 5) // 0, 1, 2, 3 and 4 MiB
}
