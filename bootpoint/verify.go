package bootpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/p2v"
)

// checkWritten reads the ranges changes wrote back from the host's new
// boot point res.BootPoint and compares them with what was meant to be
// written, unless s.SkipReadBack. A boot point that differs, or that
// cannot be read back, is not kept: undo removes it, so that every boot
// point the VM keeps was read back whole.
func (s *Standby) checkWritten(ctx context.Context, vm VM, res *Result, changes []Delta, undo func(context.Context) error) error {
	if s.SkipReadBack {
		return nil
	}
	seq := res.BootPoint.Meta.Sequence
	s.emit(Event{Sequence: seq, Step: "verify", Bytes: res.Bytes})
	start := time.Now()
	n, err := s.compareWithHost(ctx, vm, res.BootPoint, changes)
	res.ReadBack, res.ReadBackDuration = n, time.Since(start)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("reading boot point %d back from the host: %w", seq, err)
	if uerr := undo(context.WithoutCancel(ctx)); uerr != nil {
		return errors.Join(err, fmt.Errorf("removing boot point %d, which was not verified, failed too: %w", seq, uerr))
	}
	s.logger().Error("a new boot point did not read back as written: removed", "vm", vm.Name, "sequence", seq, "err", err)
	return fmt.Errorf("%w (the boot point was removed)", err)
}

// undoBootPoint removes boot point snap, just added on top of base, and
// reverts the VM to base: the VM is as it was before.
func (s *Standby) undoBootPoint(ctx context.Context, vm VM, snap Snapshot, base BootPoint) error {
	if err := s.Hypervisor.RemoveSnapshot(ctx, vm, snap); err != nil {
		return err
	}
	return s.Hypervisor.Revert(ctx, vm, base.Snapshot)
}

// compareWithHost reads the ranges of changes from boot point bp's disks
// and compares them with the changes' sources. It returns the bytes read
// from the host; a difference is a *MismatchError.
func (s *Standby) compareWithHost(ctx context.Context, vm VM, bp BootPoint, changes []Delta) (int64, error) {
	const chunk = 1 << 20
	got, want := make([]byte, chunk), make([]byte, chunk)
	var read int64
	reporting := s.withTransfers(ctx, bp.Meta.Sequence, 0)
	for _, c := range changes {
		if len(c.Extents) == 0 {
			continue
		}
		var total, done int64
		for _, e := range c.Extents {
			total += e.Len
		}
		progress := Progress(reporting, StepVerify, c.Disk)
		progress(0, total)
		disk, err := s.Hypervisor.OpenDisk(ctx, vm, bp.Snapshot, c.Disk)
		if err != nil {
			return read, err
		}
		if disk.Size() != c.Size {
			disk.Close()
			return read, fmt.Errorf("%w: boot point %d disk %d holds %d bytes, its point %d", ErrChainMismatch, bp.Meta.Sequence, c.Disk, disk.Size(), c.Size)
		}
		for _, e := range c.Extents {
			for off := e.Off; off < e.End(); off += chunk {
				if err := ctx.Err(); err != nil {
					disk.Close()
					return read, err
				}
				n := min(chunk, e.End()-off)
				if err := readAt(disk, got[:n], off); err != nil {
					disk.Close()
					return read, fmt.Errorf("disk %d: %w", c.Disk, err)
				}
				read += n
				if err := readAt(c.Source, want[:n], off); err != nil {
					disk.Close()
					return read, fmt.Errorf("image point, disk %d: %w", c.Disk, err)
				}
				if !bytes.Equal(got[:n], want[:n]) {
					disk.Close()
					i := 0
					for got[i] == want[i] {
						i++
					}
					return read, &MismatchError{Sequence: bp.Meta.Sequence, Disk: c.Disk, Offset: off + int64(i)}
				}
				done += n
				progress(done, total)
			}
		}
		if err := disk.Close(); err != nil {
			return read, err
		}
	}
	return read, nil
}

// VerifyResult reports one verification of a boot point.
type VerifyResult struct {
	BootPoint BootPoint
	// Full: every byte of every disk was compared; otherwise only what
	// the boot point wrote on top of the previous one.
	Full bool
	// Bytes is what was read back from the host (and as much again from
	// the image point), in Duration.
	Bytes    int64
	Duration time.Duration
	// Compared is what was read of the image points to find what the boot
	// point wrote, where the images cannot say (across a new full image
	// or a resize).
	Compared int64
}

// VerifyBootPoint compares boot point sequence (-1: the newest) as the
// host holds it with its point ⊕ patches. With full, every byte of every
// disk (reading the whole chain: the disk's size, hours on a real server
// over the network); otherwise only the ranges it wrote on top of the
// previous boot point (for the oldest one kept, all its data), as Add
// does for each new boot point. A difference is a *MismatchError.
func (s *Standby) VerifyBootPoint(ctx context.Context, set aipimage.Set, sequence int, full bool) (VerifyResult, error) {
	start := time.Now()
	vm, bps, err := s.BootPoints(ctx)
	if err != nil {
		return VerifyResult{}, err
	}
	i := len(bps) - 1
	if sequence >= 0 {
		for i >= 0 && bps[i].Meta.Sequence != sequence {
			i--
		}
	}
	if i < 0 {
		return VerifyResult{}, fmt.Errorf("%w: no boot point %d on VM %s", ErrNotFound, sequence, s.VM.Name)
	}
	var prev *BootPoint
	if i > 0 {
		prev = &bps[i-1]
	}
	res, err := s.verify(ctx, set, vm, bps[i], prev, full)
	res.Duration = time.Since(start)
	return res, err
}

// verify compares boot point bp with its point ⊕ patches: every byte, or
// (not full) what it wrote on top of boot point prev (nil: all its data).
func (s *Standby) verify(ctx context.Context, set aipimage.Set, vm VM, bp BootPoint, prev *BootPoint, full bool) (VerifyResult, error) {
	res := VerifyResult{BootPoint: bp, Full: full}
	k, err := indexOf(set, bp.Meta)
	if err != nil {
		return res, err
	}
	point, err := set.Point(k)
	if err != nil {
		return res, err
	}
	plan, err := s.inspector().Inspect(ctx, point)
	if err != nil {
		return res, err
	}
	if plan.Digest() != bp.Meta.PatchDigest {
		return res, fmt.Errorf("%w: the plan of point %d is not the one its boot point was made with", ErrChainMismatch, bp.Meta.Sequence)
	}
	s.emit(Event{Sequence: bp.Meta.Sequence, Step: "verify"})
	var changes []Delta
	switch {
	case full:
		for d, disk := range point.Info().Disks {
			src, err := point.Disk(d)
			if err != nil {
				return res, err
			}
			want, err := p2v.NewOverlay(src, plan, d)
			if err != nil {
				return res, err
			}
			changes = append(changes, Delta{Disk: d, Size: disk.Size, Extents: []aipimage.Extent{{Off: 0, Len: disk.Size}}, Source: want})
		}
	case prev == nil:
		points := set.Points()
		for d := range point.Info().Disks {
			held, err := ChangedSince(set, aipimage.ChainStart(points, k)-1, k, d)
			if err != nil {
				return res, err
			}
			delta, err := PlanDelta(point, d, held, nil, plan, SectorSize)
			if err != nil {
				return res, err
			}
			changes = append(changes, delta)
		}
	default:
		j, err := indexOf(set, prev.Meta)
		if err != nil {
			return res, err
		}
		prevPoint, err := set.Point(j)
		if err != nil {
			return res, err
		}
		prevPlan, err := s.inspector().Inspect(ctx, prevPoint)
		if err != nil {
			return res, err
		}
		if changes, res.Compared, err = planChanges(ctx, set, j, k, prevPlan, plan, nil); err != nil {
			return res, err
		}
	}
	res.Bytes, err = s.compareWithHost(ctx, vm, bp, changes)
	return res, err
}
