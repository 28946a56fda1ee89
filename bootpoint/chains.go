package bootpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/internal/extent"
	"github.com/standbykit/standbykit/p2v"
)

// ResizeError reports a point whose disks differ in number or size from
// the standby VM's (its current boot point's point): no boot point is
// made, since ESXi cannot grow a disk that has snapshots and shrinking one
// would drop data. An operator decides: Manager.Reseed starts a new standby
// from the resized point. It matches aipimage.ErrDiskResized.
type ResizeError struct {
	Sequence  int // the point
	BootPoint int // the sequence of the VM's current boot point
	// Disk is the disk whose size changed, -1 when the number of disks
	// did; Old and New are its sizes (the numbers of disks for -1).
	Disk     int
	Old, New int64
}

func (e *ResizeError) Error() string {
	if e.Disk < 0 {
		return fmt.Sprintf("bootpoint: point %d has %d disks, the standby VM (boot point %d) %d: reseed the standby", e.Sequence, e.New, e.BootPoint, e.Old)
	}
	return fmt.Sprintf("bootpoint: disk %d was resized from %d to %d bytes at point %d (the standby VM is at boot point %d): reseed the standby", e.Disk, e.Old, e.New, e.Sequence, e.BootPoint)
}

func (e *ResizeError) Unwrap() error { return aipimage.ErrDiskResized }

// checkGeometry refuses a point whose disks the VM made at boot point
// from cannot take.
func checkGeometry(from, to aipimage.PointInfo) error {
	if len(from.Disks) != len(to.Disks) {
		return &ResizeError{Sequence: to.Sequence, BootPoint: from.Sequence, Disk: -1, Old: int64(len(from.Disks)), New: int64(len(to.Disks))}
	}
	for d := range from.Disks {
		if from.Disks[d].Size != to.Disks[d].Size {
			return &ResizeError{Sequence: to.Sequence, BootPoint: from.Sequence, Disk: d, Old: from.Disks[d].Size, New: to.Disks[d].Size}
		}
	}
	return nil
}

// compareGrain is the unit in which a comparison of two points reports
// differences.
const compareGrain = 4096

// changedBetween returns what disk d of point k differs in from point
// from (< k), the point of the VM's current boot point, and the bytes it
// read to find out. Along one chain that is the union of what the points
// after from changed, read from the index alone. Across a new full image,
// or a resize, the images do not say what changed: the two points are
// read and compared wherever either holds data (at most the disk's size
// twice; zero areas of both cost nothing).
func changedBetween(ctx context.Context, set aipimage.Set, from, k, d int) ([]aipimage.Extent, int64, error) {
	points := set.Points()
	compare := false
	for j := from + 1; j <= k; j++ {
		if points[j].Full() || len(points[j].Resized) > 0 {
			compare = true
		}
	}
	if !compare {
		exts, err := ChangedSince(set, from, k, d)
		return exts, 0, err
	}
	var candidates extent.Set
	for _, j := range []int{from, k} {
		held, err := ChangedSince(set, aipimage.ChainStart(points, j)-1, j, d)
		if err != nil {
			return nil, 0, err
		}
		for _, e := range held {
			candidates.Add(e.Off, e.Len)
		}
	}
	a, err := set.Point(from)
	if err != nil {
		return nil, 0, err
	}
	b, err := set.Point(k)
	if err != nil {
		return nil, 0, err
	}
	ra, err := a.Disk(d)
	if err != nil {
		return nil, 0, err
	}
	rb, err := b.Disk(d)
	if err != nil {
		return nil, 0, err
	}
	size := min(ra.Size(), rb.Size())
	return diffRanges(ctx, ra, rb, candidates.AlignOut(compareGrain).Clip(0, size).Extents(), compareGrain)
}

// diffRanges compares a and b inside ranges and returns where they differ,
// in units of grain, with the bytes read from both.
func diffRanges(ctx context.Context, a, b io.ReaderAt, ranges []aipimage.Extent, grain int64) ([]aipimage.Extent, int64, error) {
	const chunk = 1 << 20
	ba, bb := make([]byte, chunk), make([]byte, chunk)
	var out extent.Set
	var read int64
	for _, r := range ranges {
		for off := r.Off; off < r.End(); off += chunk {
			if err := ctx.Err(); err != nil {
				return nil, read, err
			}
			n := min(chunk, r.End()-off)
			if err := readAt(a, ba[:n], off); err != nil {
				return nil, read, err
			}
			if err := readAt(b, bb[:n], off); err != nil {
				return nil, read, err
			}
			read += 2 * n
			for g := int64(0); g < n; g += grain {
				end := min(g+grain, n)
				if !bytes.Equal(ba[g:end], bb[g:end]) {
					out.Add(off+g, end-g)
				}
			}
		}
	}
	return out.Extents(), read, nil
}

// readAt fills p from off; io.EOF after a full read is success.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading at %d: %w", off, err)
}

// planChanges computes the deltas of a boot point of point k (plan cur)
// on top of one of point from (plan prev), each with its Base, and the
// bytes read to compare points where the images cannot say what changed.
func planChanges(ctx context.Context, set aipimage.Set, from, k int, prev, cur *p2v.Plan, progress func(written int64)) ([]Delta, int64, error) {
	point, err := set.Point(k)
	if err != nil {
		return nil, 0, err
	}
	lastPoint, err := set.Point(from)
	if err != nil {
		return nil, 0, err
	}
	var changes []Delta
	var written, compared int64
	for d := range point.Info().Disks {
		changed, n, err := changedBetween(ctx, set, from, k, d)
		compared += n
		if err != nil {
			return nil, compared, err
		}
		delta, err := PlanDelta(point, d, changed, prev, cur, SectorSize)
		if err != nil {
			return nil, compared, err
		}
		lastDisk, err := lastPoint.Disk(d)
		if err != nil {
			return nil, compared, err
		}
		if delta.Base, err = p2v.NewOverlay(lastDisk, prev, d); err != nil {
			return nil, compared, err
		}
		changes = append(changes, delta)
		written += delta.Bytes()
		if progress != nil {
			progress(written)
		}
	}
	return changes, compared, nil
}
