package appliance_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx/appliance"
	"github.com/standbykit/standbykit/internal/extent"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	tib = int64(1) << 40
)

type ext = extent.Extent

// target is a Target whose base and new content are Patterns.
func target(capacity int64, base, src byte, exts ...ext) appliance.Target {
	return appliance.Target{Capacity: capacity, Extents: exts, Source: appliance.Pattern{Seed: src}, Base: appliance.Pattern{Seed: base}}
}

// build writes the payload for targets and checks its size.
func build(t testing.TB, targets ...appliance.Target) ([]byte, string) {
	t.Helper()
	size, err := appliance.PayloadSize(targets)
	require.NoError(t, err)
	var buf bytes.Buffer
	id, n, err := appliance.WritePayload(context.Background(), &buf, targets)
	require.NoError(t, err)
	require.Equal(t, size, n)
	require.Equal(t, n, int64(buf.Len()))
	require.Len(t, id, 32)
	require.Zero(t, n%512)
	return buf.Bytes(), id
}

func disks(ds ...*appliance.MemDisk) []appliance.Disk {
	out := make([]appliance.Disk, len(ds))
	for i, d := range ds {
		out[i] = d
	}
	return out
}

func run(payload []byte, ds []appliance.Disk, report io.Writer) (appliance.Result, error) {
	return appliance.Apply(context.Background(), bytes.NewReader(payload), int64(len(payload)), ds, report)
}

// expected is the content of a whole disk after tg was applied to it.
func expected(tg appliance.Target, base byte) []byte {
	b := make([]byte, tg.Capacity)
	_, _ = appliance.Pattern{Seed: base}.ReadAt(b, 0)
	for _, e := range tg.Extents {
		_, _ = tg.Source.ReadAt(b[e.Off:e.End()], e.Off)
	}
	return b
}

// checkAround checks, on a disk too large to compare whole, every extent
// of tg and the sector on each side of it.
func checkAround(t *testing.T, d *appliance.MemDisk, tg appliance.Target, base byte) {
	t.Helper()
	for _, e := range tg.Extents {
		lo, hi := max(e.Off-512, 0), min(e.End()+512, tg.Capacity)
		want := make([]byte, hi-lo)
		_, _ = appliance.Pattern{Seed: base}.ReadAt(want, lo)
		_, _ = tg.Source.ReadAt(want[e.Off-lo:e.End()-lo], e.Off)
		require.True(t, d.Equal(lo, want), "extent %+v", e)
	}
}

// events returns the events of a report's lines, checking each is JSON.
func events(t *testing.T, report []byte) []appliance.ReportLine {
	t.Helper()
	var out []appliance.ReportLine
	sc := bufio.NewScanner(bytes.NewReader(report))
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l appliance.ReportLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "%s", sc.Bytes())
		out = append(out, l)
	}
	return out
}

func eventNames(ls []appliance.ReportLine) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Event)
	}
	return out
}

func TestApplySeveralTargets(t *testing.T) {
	// Two targets of equal capacity, given in another order than the disks.
	t0 := target(1*mib, 3, 10, ext{Off: 0, Len: 4 * kib}, ext{Off: mib - 512, Len: 512})
	t1 := target(2*mib, 1, 11, ext{Off: 512, Len: 8 * kib}, ext{Off: mib, Len: 64 * kib}, ext{Off: 2*mib - 4*kib, Len: 4 * kib})
	t2 := target(1*mib, 2, 12, ext{Off: 0, Len: mib})
	payload, id := build(t, t0, t1, t2)
	d0, d1, d2 := appliance.NewPatternDisk(2*mib, 1), appliance.NewPatternDisk(mib, 2), appliance.NewPatternDisk(mib, 3)
	var report bytes.Buffer
	res, err := run(payload, disks(d0, d1, d2), &report)
	require.NoError(t, err)
	assert.Equal(t, appliance.Result{PayloadID: id, Targets: []int{2, 0, 1}, Records: 6, BytesWritten: 4*kib + 512 + 8*kib + 64*kib + 4*kib + mib}, res)
	assert.True(t, d2.Equal(0, expected(t0, 3)))
	assert.True(t, d0.Equal(0, expected(t1, 1)))
	assert.True(t, d1.Equal(0, expected(t2, 2)))
	for _, d := range []*appliance.MemDisk{d0, d1, d2} {
		assert.Equal(t, 1, d.Syncs())
	}

	ls := events(t, report.Bytes())
	assert.Equal(t, []string{"start", "guard", "guard", "guard", "write", "write", "write", "verify", "verify", "verify", "done"}, eventNames(ls))
	for _, l := range ls {
		assert.Equal(t, id, l.PayloadID)
		assert.True(t, l.OK)
	}
	assert.Equal(t, 2, *ls[1].Disk)
	assert.Equal(t, 3, ls[5].Records)
	assert.NoError(t, appliance.ReadReport(bytes.NewReader(report.Bytes()), id))
	got, err := appliance.PayloadID(bytes.NewReader(payload), int64(len(payload)))
	require.NoError(t, err)
	assert.Equal(t, id, got)
}

func TestApplyLargeDisks(t *testing.T) {
	c0, c1 := 3*tib, 2*tib+512
	t0 := target(c0, 4, 5, ext{Off: 0, Len: 4 * kib}, ext{Off: tib + 512, Len: 1024}, ext{Off: c0 - 8*kib, Len: 8 * kib})
	t1 := target(c1, 6, 7, ext{Off: c1 - 512, Len: 512})
	payload, _ := build(t, t0, t1)
	d0, d1 := appliance.NewPatternDisk(c1, 6), appliance.NewPatternDisk(c0, 4)
	res, err := run(payload, disks(d0, d1), nil)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 0}, res.Targets)
	checkAround(t, d1, t0, 4)
	checkAround(t, d0, t1, 6)
}

func TestApplyLongExtents(t *testing.T) {
	// 4 MiB is the longest record: one record, then three for 9 MiB + 512.
	tg := target(32*mib, 1, 2, ext{Off: 0, Len: 4 * mib}, ext{Off: 8 * mib, Len: 9*mib + 512}, ext{Off: 32*mib - 4*mib - 512, Len: 4*mib + 512})
	payload, _ := build(t, tg)
	d := appliance.NewPatternDisk(32*mib, 1)
	res, err := run(payload, disks(d), nil)
	require.NoError(t, err)
	assert.Equal(t, 1+3+2, res.Records)
	assert.Equal(t, 17*mib+1024, res.BytesWritten)
	assert.True(t, d.Equal(0, expected(tg, 1)))
}

func TestApplyManySmallExtents(t *testing.T) {
	var exts []ext
	for off := int64(0); off < 4*mib; off += 2 * kib {
		exts = append(exts, ext{Off: off + 1024, Len: 512})
	}
	tg := target(4*mib, 8, 9, exts...)
	payload, id := build(t, tg)
	d := appliance.NewPatternDisk(4*mib, 8)
	var report bytes.Buffer
	res, err := run(payload, disks(d), &report)
	require.NoError(t, err)
	assert.Equal(t, len(exts), res.Records)
	assert.True(t, d.Equal(0, expected(tg, 8)))
	assert.NoError(t, appliance.ReadReport(bytes.NewReader(report.Bytes()), id))
}

// unchanged checks that disks were not written and still hold want.
func unchanged(t *testing.T, want [][]byte, ds ...*appliance.MemDisk) {
	t.Helper()
	for i, d := range ds {
		assert.Zero(t, d.Writes(), "disk %d written", i)
		assert.True(t, d.Equal(0, want[i]), "disk %d changed", i)
	}
}

func contents(ds ...*appliance.MemDisk) [][]byte {
	var out [][]byte
	for _, d := range ds {
		out = append(out, d.Bytes(0, d.Size()))
	}
	return out
}

func TestApplyGuardMismatch(t *testing.T) {
	tg := target(mib, 1, 2, ext{Off: 4 * kib, Len: 8 * kib})
	payload, id := build(t, tg)
	// One byte differs inside the extent; another disk has another capacity.
	bad := appliance.NewMemDisk(mib, func(off int64) byte {
		b := appliance.PatternByte(1, off)
		if off == 4*kib+100 {
			b ^= 1
		}
		return b
	})
	other := appliance.NewPatternDisk(2*mib, 1)
	before := contents(bad, other)
	var report bytes.Buffer
	res, err := run(payload, disks(bad, other), &report)
	require.ErrorIs(t, err, appliance.ErrGuard)
	assert.Nil(t, res.Targets)
	unchanged(t, before, bad, other)
	err = appliance.ReadReport(bytes.NewReader(report.Bytes()), id)
	assert.ErrorIs(t, err, appliance.ErrReport)
	assert.ErrorIs(t, err, appliance.ErrGuard)
	assert.Equal(t, []string{"start", "guard", "error"}, eventNames(events(t, report.Bytes())))
}

func TestApplyPicksMatchingDisk(t *testing.T) {
	tg := target(mib, 1, 2, ext{Off: 0, Len: 512}, ext{Off: 64 * kib, Len: 64 * kib})
	payload, _ := build(t, tg)
	wrong, right := appliance.NewPatternDisk(mib, 5), appliance.NewPatternDisk(mib, 1)
	before := contents(wrong)
	res, err := run(payload, disks(wrong, right), nil)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, res.Targets)
	unchanged(t, before, wrong)
	assert.True(t, right.Equal(0, expected(tg, 1)))
}

func TestApplyGuardRefuses(t *testing.T) {
	tg := target(mib, 1, 2, ext{Off: 0, Len: 4 * kib})
	payload, _ := build(t, tg)
	twin := target(mib, 1, 3, ext{Off: 0, Len: 4 * kib})
	twins, _ := build(t, tg, twin)
	for _, c := range []struct {
		name    string
		payload []byte
		disks   []*appliance.MemDisk
	}{
		{"ambiguous", payload, []*appliance.MemDisk{appliance.NewPatternDisk(mib, 1), appliance.NewPatternDisk(mib, 1)}},
		{"no disk of the capacity", payload, []*appliance.MemDisk{appliance.NewPatternDisk(2*mib, 1)}},
		{"no disks", payload, nil},
		{"two targets on one disk", twins, []*appliance.MemDisk{appliance.NewPatternDisk(mib, 1), appliance.NewPatternDisk(mib, 7)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := contents(c.disks...)
			_, err := run(c.payload, disks(c.disks...), nil)
			require.ErrorIs(t, err, appliance.ErrGuard)
			unchanged(t, before, c.disks...)
		})
	}
	// A nil disk is no candidate.
	d := appliance.NewPatternDisk(mib, 1)
	res, err := appliance.Apply(context.Background(), bytes.NewReader(payload), int64(len(payload)), []appliance.Disk{nil, d}, nil)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, res.Targets)
}

// smallPayload is a payload of a few sectors for exhaustive tests, and
// fresh disks it applies to.
// The targets are at SCSI units 1 and 2, and so are the disks.
func smallPayload(t testing.TB) ([]byte, string, func() []*appliance.MemDisk) {
	t0 := target(64*kib, 1, 2, ext{Off: 0, Len: 512}, ext{Off: 4 * kib, Len: 1024})
	t0.Unit = 1
	t1 := target(32*kib, 3, 4, ext{Off: 32*kib - 512, Len: 512})
	t1.Unit = 2
	payload, id := build(t, t0, t1)
	return payload, id, func() []*appliance.MemDisk {
		return []*appliance.MemDisk{appliance.NewPatternDisk(32*kib, 3).AtUnit(2), appliance.NewPatternDisk(64*kib, 1).AtUnit(1)}
	}
}

func TestApplyEveryByteCorrupted(t *testing.T) {
	payload, _, fresh := smallPayload(t)
	ds := fresh()
	before := contents(ds...)
	_, err := run(payload, disks(fresh()...), nil)
	require.NoError(t, err, "the intact payload applies")
	bad := make([]byte, len(payload))
	for i := range payload {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			copy(bad, payload)
			bad[i] ^= mask
			_, err := run(bad, disks(ds...), nil)
			if !errors.Is(err, appliance.ErrCorrupt) && !errors.Is(err, appliance.ErrGuard) {
				t.Fatalf("byte %d ^ %#x: err %v", i, mask, err)
			}
		}
	}
	unchanged(t, before, ds...)
}

func TestApplyTruncated(t *testing.T) {
	payload, _, fresh := smallPayload(t)
	ds := fresh()
	before := contents(ds...)
	for n := range len(payload) {
		_, err := run(payload[:n], disks(ds...), nil)
		require.ErrorIs(t, err, appliance.ErrCorrupt, "cut at %d", n)
		// The size promises more than the reader has.
		_, err = appliance.Apply(context.Background(), bytes.NewReader(payload[:n]), int64(len(payload)), disks(ds...), nil)
		require.ErrorIs(t, err, appliance.ErrCorrupt, "short reader cut at %d", n)
	}
	unchanged(t, before, ds...)

	// A payload disk larger than the payload (rounded up on import).
	big := append(append([]byte(nil), payload...), bytes.Repeat([]byte{0xa5}, 3000)...)
	_, err := run(big, disks(ds...), nil)
	require.NoError(t, err)
}

func TestApplyLostWrites(t *testing.T) {
	payload, id, fresh := smallPayload(t)
	ds := fresh()
	ds[1].Lose = true
	var report bytes.Buffer
	_, err := run(payload, disks(ds...), &report)
	require.ErrorIs(t, err, appliance.ErrVerify)
	ls := events(t, report.Bytes())
	assert.Equal(t, []string{"start", "guard", "guard", "write", "write", "verify", "verify", "error"}, eventNames(ls))
	assert.False(t, ls[5].OK)
	assert.True(t, ls[6].OK)
	err = appliance.ReadReport(bytes.NewReader(report.Bytes()), id)
	assert.ErrorIs(t, err, appliance.ErrVerify)
	assert.ErrorIs(t, err, appliance.ErrReport)
}

func TestApplyWriteError(t *testing.T) {
	payload, id, fresh := smallPayload(t)
	ds := fresh()
	ds[0].WriteErr = errors.New("disk on fire")
	var report bytes.Buffer
	_, err := run(payload, disks(ds...), &report)
	require.ErrorContains(t, err, "disk on fire")
	for _, e := range []error{appliance.ErrCorrupt, appliance.ErrGuard, appliance.ErrVerify} {
		assert.NotErrorIs(t, err, e)
	}
	err = appliance.ReadReport(bytes.NewReader(report.Bytes()), id)
	assert.ErrorIs(t, err, appliance.ErrReport)
	assert.ErrorContains(t, err, "disk on fire")
}

func TestApplyContext(t *testing.T) {
	payload, _, fresh := smallPayload(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ds := fresh()
	_, err := appliance.Apply(ctx, bytes.NewReader(payload), int64(len(payload)), disks(ds...), nil)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, ds[0].Writes()+ds[1].Writes())

	// Cancelled while writing: Apply stops at the next record.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	ds = fresh()
	ds[1].OnWrite = cancel
	_, err = appliance.Apply(ctx, bytes.NewReader(payload), int64(len(payload)), disks(ds...), nil)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, ds[1].Writes())
	assert.Zero(t, ds[0].Writes())
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("serial port gone") }

func TestApplyReportFails(t *testing.T) {
	payload, _, fresh := smallPayload(t)
	ds := fresh()
	_, err := appliance.Apply(context.Background(), bytes.NewReader(payload), int64(len(payload)), disks(ds...), failWriter{})
	require.ErrorContains(t, err, "serial port gone")
	assert.Zero(t, ds[0].Writes()+ds[1].Writes())
}

func TestPayloadIDOfOtherDisks(t *testing.T) {
	_, err := appliance.PayloadID(appliance.NewPatternDisk(mib, 1), mib)
	assert.ErrorIs(t, err, appliance.ErrCorrupt)
	_, err = appliance.PayloadID(appliance.NewMemDisk(mib, nil), mib)
	assert.ErrorIs(t, err, appliance.ErrCorrupt)
	_, err = appliance.PayloadID(bytes.NewReader(nil), 0)
	assert.ErrorIs(t, err, appliance.ErrCorrupt)
}

// swapReader reads from a, or from b once swapped.
type swapReader struct {
	a, b    []byte
	swapped bool
}

func (s *swapReader) ReadAt(p []byte, off int64) (int, error) {
	if s.swapped {
		return bytes.NewReader(s.b).ReadAt(p, off)
	}
	return bytes.NewReader(s.a).ReadAt(p, off)
}

func TestApplyPayloadChangesWhileWriting(t *testing.T) {
	payload, _, fresh := smallPayload(t)
	changed := append([]byte(nil), payload...)
	changed[len(changed)-512-1] ^= 1 // the last record's data
	r := &swapReader{a: payload, b: changed}
	ds := fresh()
	ds[1].OnWrite = func() { r.swapped = true }
	_, err := appliance.Apply(context.Background(), r, int64(len(payload)), disks(ds...), nil)
	require.ErrorIs(t, err, appliance.ErrCorrupt)
	assert.ErrorContains(t, err, "changed since it was checked")
	assert.Zero(t, ds[0].Writes(), "the changed record was not written")
}

func TestApplyMostTargets(t *testing.T) {
	const n = 64 // a header of five sectors
	var tgs []appliance.Target
	var ds []*appliance.MemDisk
	for i := range n {
		c := int64(i%4+1) * 64 * kib
		tgs = append(tgs, target(c, byte(i), byte(i+100), ext{Off: int64(i) * 512, Len: 512}, ext{Off: c - 1024, Len: 1024}))
	}
	payload, id := build(t, tgs...)
	for i := range n { // disk k holds target n-1-k
		j := n - 1 - i
		ds = append(ds, appliance.NewPatternDisk(tgs[j].Capacity, byte(j)))
	}
	var report bytes.Buffer
	res, err := run(payload, disks(ds...), &report)
	require.NoError(t, err)
	for i := range n {
		require.Equal(t, n-1-i, res.Targets[i])
		require.True(t, ds[n-1-i].Equal(0, expected(tgs[i], byte(i))), "target %d", i)
	}
	require.NoError(t, appliance.ReadReport(bytes.NewReader(report.Bytes()), id))

	fresh := appliance.NewPatternDisk(64*kib, 0)
	for _, cut := range []int{600, 2559, 2560, 3000} {
		_, err := run(payload[:cut], disks(fresh), nil)
		require.ErrorIs(t, err, appliance.ErrCorrupt, "cut at %d", cut)
	}
	_, err = appliance.Apply(context.Background(), errReaderAt{errors.New("payload disk gone")}, int64(len(payload)), disks(fresh), nil)
	require.ErrorContains(t, err, "payload disk gone")
	assert.NotErrorIs(t, err, appliance.ErrCorrupt)
	assert.Zero(t, fresh.Writes())
}

func TestApplyResultTargetsOnlyWhenWriting(t *testing.T) {
	payload, _, fresh := smallPayload(t)
	bad := append([]byte(nil), payload...)
	bad[len(bad)-512-1] ^= 1 // data: the guard passes, the data check fails
	res, err := run(bad, disks(fresh()...), nil)
	require.ErrorIs(t, err, appliance.ErrCorrupt)
	assert.NotEmpty(t, res.PayloadID)
	assert.Nil(t, res.Targets)

	ds := fresh()
	ds[1].Lose = true
	res, err = run(payload, disks(ds...), nil)
	require.ErrorIs(t, err, appliance.ErrVerify)
	assert.Equal(t, []int{1, 0}, res.Targets)
}
