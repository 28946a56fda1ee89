package bootpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/p2v"
)

// Inspector decides the P2V plan of a point. It must be deterministic: the
// plan of a point is recomputed to undo its patches in the next boot point.
type Inspector interface {
	Inspect(ctx context.Context, p aipimage.Point) (*p2v.Plan, error)
}

// NoP2V is the Inspector that changes nothing.
type NoP2V struct{}

// Inspect returns an empty plan.
func (NoP2V) Inspect(context.Context, aipimage.Point) (*p2v.Plan, error) { return &p2v.Plan{}, nil }

// Standby keeps one standby VM up to date from one image set.
type Standby struct {
	Hypervisor Hypervisor
	// Inspector plans P2V fixups; nil means NoP2V.
	Inspector Inspector
	// VM is the template of the VM to create: name, CPUs, memory, network.
	// Firmware, guest and controller come from the first point's plan
	// where the template leaves them empty.
	VM VMSpec
	// MaxBootPoints caps the boot points kept; beyond it the oldest are
	// consolidated. 0 means 30, ESXi's snapshot depth limit.
	MaxBootPoints int
	// Library is recorded in every boot point's metadata.
	Library string
	Logger  *slog.Logger
	// Progress, when set, hears about each step, and how far the long
	// ones have come. It may be called from goroutines other than the
	// caller's, one call at a time.
	Progress func(Event)
	// SkipReadBack turns off reading each new boot point's written ranges
	// back from the host (Hypervisor.OpenDisk on its snapshot) and
	// comparing them with the point, which Add does by default: it costs
	// as many bytes read as were written.
	SkipReadBack bool
}

// Event reports progress of a Standby operation.
type Event struct {
	Sequence int
	// Step is "inspect", "base", "delta", "snapshot", "done", or a
	// transfer step (StepStream, StepUpload, StepPayload, StepVerify).
	Step  string
	Bytes int64 // bytes of changes planned for this boot point so far
	// Transfer steps report their disk (-1 for a payload of several) and
	// bytes done of total, from a first report to Done == Total (a step
	// that fails ends earlier), a granule apart (see Progress).
	Disk        int
	Done, Total int64
}

// BootPoint is a snapshot StandbyKit made, with its metadata.
type BootPoint struct {
	Snapshot Snapshot
	Meta     Metadata
}

// Result describes one boot point added.
type Result struct {
	BootPoint BootPoint
	Bytes     int64 // bytes of changes written (all disks)
	Duration  time.Duration
	// Compared is what was read of the image points to find the changes
	// where the images cannot say (a new full image, a resize): both
	// points wherever either holds data. Zero along one chain.
	Compared int64
	// ReadBack is what was read back from the host and compared with the
	// point (the bytes written, unless Standby.SkipReadBack), in
	// ReadBackDuration.
	ReadBack         int64
	ReadBackDuration time.Duration
}

// ErrChainMismatch reports boot points that do not belong to the set, or a
// set that no longer contains a boot point's point.
var ErrChainMismatch = errors.New("bootpoint: VM boot points do not match the image set")

func (s *Standby) inspector() Inspector {
	if s.Inspector == nil {
		return NoP2V{}
	}
	return s.Inspector
}

func (s *Standby) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Standby) emit(e Event) {
	if s.Progress != nil {
		s.Progress(e)
	}
}

// withTransfers returns ctx carrying the reporting of the hypervisor's
// transfers for the boot point of sequence seq.
func (s *Standby) withTransfers(ctx context.Context, seq int, bytes int64) context.Context {
	if s.Progress == nil {
		return ctx
	}
	var mu sync.Mutex // the hypervisor may report from several goroutines
	return WithProgress(ctx, func(t Transfer) {
		mu.Lock()
		defer mu.Unlock()
		s.emit(Event{Sequence: seq, Step: t.Step, Bytes: bytes, Disk: t.Disk, Done: t.Done, Total: t.Total})
	})
}

// BootPoints lists the VM's boot points, oldest first; ErrNotFound when
// the VM does not exist. Snapshots StandbyKit did not take are skipped.
func (s *Standby) BootPoints(ctx context.Context) (VM, []BootPoint, error) {
	vm, err := s.Hypervisor.FindVM(ctx, s.VM.Name)
	if err != nil {
		return VM{}, nil, err
	}
	snaps, err := s.Hypervisor.Snapshots(ctx, vm)
	if err != nil {
		return vm, nil, err
	}
	var out []BootPoint
	for _, sn := range snaps {
		m, err := ParseMetadata(sn.Description)
		if err != nil {
			continue
		}
		out = append(out, BootPoint{Snapshot: sn, Meta: m})
	}
	return vm, out, nil
}

// Sync adds one boot point for every point of set newer than the VM's
// newest boot point, creating the VM if needed from the full image that
// starts the set's newest chain.
func (s *Standby) Sync(ctx context.Context, set aipimage.Set) ([]Result, error) {
	var results []Result
	if err := s.Prune(ctx); err != nil {
		return nil, err
	}
	for {
		_, bps, err := s.BootPoints(ctx)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return results, err
		}
		next := aipimage.ChainStart(set.Points(), len(set.Points())-1)
		if len(bps) > 0 {
			k, err := indexOf(set, bps[len(bps)-1].Meta)
			if err != nil {
				return results, err
			}
			next = k + 1
		}
		if next >= len(set.Points()) {
			return results, nil
		}
		r, err := s.Add(ctx, set, next)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
}

// current is the boot point whose snapshot is the VM's current one: the
// base of the next boot point. A VM whose current snapshot is not a boot
// point (or that has none) has no base to build on.
func current(vm VM, bps []BootPoint) (BootPoint, error) {
	for _, bp := range bps {
		if bp.Snapshot.Current {
			return bp, nil
		}
	}
	return BootPoint{}, fmt.Errorf("%w: the current snapshot of VM %s is not a boot point: revert it to one", ErrDiverged, vm.Name)
}

// SectorSize is the unit every Delta's extents are aligned to; a
// hypervisor widens them to its own grain (a Delta's Source holds the
// whole disk).
const SectorSize = 512

// indexOf finds the point a boot point was made from.
func indexOf(set aipimage.Set, m Metadata) (int, error) {
	for k, p := range set.Points() {
		if p.PointID == m.PointID {
			if p.SetID != m.SetID {
				break
			}
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: boot point %d (point %s of set %s) is not in the image set", ErrChainMismatch, m.Sequence, m.PointID, m.SetID)
}

// Add makes a boot point for point k on top of the VM's current boot point
// (the newest one, or the one last reverted to; it must be of an earlier
// point of the same set): one boot point may cover several increments.
// Without a VM, the VM is created with point k's content as its base.
func (s *Standby) Add(ctx context.Context, set aipimage.Set, k int) (Result, error) {
	start := time.Now()
	point, err := set.Point(k)
	if err != nil {
		return Result{}, err
	}
	info := point.Info()
	s.emit(Event{Sequence: info.Sequence, Step: "inspect"})
	plan, err := s.inspector().Inspect(ctx, point)
	if err != nil {
		return Result{}, fmt.Errorf("inspecting point %d: %w", info.Sequence, err)
	}
	meta := Metadata{SetID: info.SetID, PointID: info.PointID, Sequence: info.Sequence, PointTime: info.Time,
		PatchDigest: plan.Digest(), Library: s.Library}
	name := SnapshotName(info.Sequence, info.Time)

	vm, bps, err := s.BootPoints(ctx)
	if errors.Is(err, ErrNotFound) {
		return s.create(ctx, set, k, plan, meta, name, start)
	}
	if err != nil {
		return Result{}, err
	}
	if len(bps) == 0 {
		if vm.Annotation != standbyAnnotation(info.SetID) {
			return Result{}, fmt.Errorf("%w: VM %s exists, has no boot point and was not made by StandbyKit for this image set: delete or rename it", ErrChainMismatch, s.VM.Name)
		}
		// Our own creation was interrupted (the process died between
		// creating the VM and its first snapshot): start again.
		s.logger().Warn("removing a standby VM whose creation was interrupted", "vm", vm.Name)
		if err := s.Hypervisor.DestroyVM(ctx, vm); err != nil {
			return Result{}, fmt.Errorf("removing the half-created VM %s: %w", vm.Name, err)
		}
		return s.create(ctx, set, k, plan, meta, name, start)
	}
	base, err := current(vm, bps)
	if err != nil {
		return Result{}, err
	}
	last := base.Meta
	lastK, err := indexOf(set, last)
	if err != nil {
		return Result{}, err
	}
	if lastK >= k {
		return Result{}, fmt.Errorf("%w: the current boot point is of point %d, not older than %d", ErrChainMismatch, last.Sequence, info.Sequence)
	}
	lastPoint, err := set.Point(lastK)
	if err != nil {
		return Result{}, err
	}
	if err := checkGeometry(lastPoint.Info(), info); err != nil {
		return Result{}, err
	}
	prevPlan, err := s.inspector().Inspect(ctx, lastPoint)
	if err != nil {
		return Result{}, fmt.Errorf("inspecting point %d again: %w", last.Sequence, err)
	}
	if prevPlan.Digest() != last.PatchDigest {
		return Result{}, fmt.Errorf("%w: the plan of point %d is not the one its boot point was made with", ErrChainMismatch, last.Sequence)
	}
	changes, compared, err := planChanges(ctx, set, lastK, k, prevPlan, plan, func(written int64) {
		s.emit(Event{Sequence: info.Sequence, Step: "delta", Bytes: written})
	})
	if err != nil {
		return Result{}, err
	}
	var written int64
	for _, c := range changes {
		written += c.Bytes()
	}
	s.emit(Event{Sequence: info.Sequence, Step: "snapshot", Bytes: written})
	snap, err := s.Hypervisor.AddBootPoint(s.withTransfers(ctx, info.Sequence, written), vm, changes, name, meta.Description())
	if err != nil {
		return Result{}, err
	}
	res := Result{BootPoint: BootPoint{Snapshot: snap, Meta: meta}, Bytes: written, Compared: compared}
	if err := s.checkWritten(ctx, vm, &res, changes, func(ctx context.Context) error {
		return s.undoBootPoint(ctx, vm, snap, base)
	}); err != nil {
		return Result{}, err
	}
	s.logger().Info("boot point added", "vm", vm.Name, "sequence", info.Sequence, "bytes", written)
	if err := s.prune(ctx, vm); err != nil {
		return Result{}, fmt.Errorf("boot point %d added, but consolidating old ones failed: %w", info.Sequence, err)
	}
	s.emit(Event{Sequence: info.Sequence, Step: "done", Bytes: written})
	res.Duration = time.Since(start)
	return res, nil
}

// create makes the VM with point k's content as its base and snapshots it
// as the first boot point.
func (s *Standby) create(ctx context.Context, set aipimage.Set, k int, plan *p2v.Plan, meta Metadata, name string, start time.Time) (Result, error) {
	point, err := set.Point(k)
	if err != nil {
		return Result{}, err
	}
	info := point.Info()
	spec := s.VM
	if spec.Firmware == "" {
		spec.Firmware = plan.Firmware
		if spec.Firmware == "" && info.Machine.Firmware == aipimage.FirmwareUEFI {
			spec.Firmware = p2v.FirmwareEFI
		}
	}
	if spec.GuestID == "" {
		spec.GuestID = plan.GuestID
	}
	if spec.Controller == "" {
		spec.Controller = plan.Controller
	}
	spec.Annotation = standbyAnnotation(info.SetID)
	spec.DiskSizes = nil
	var bases []Delta
	var written int64
	for d, disk := range info.Disks {
		spec.DiskSizes = append(spec.DiskSizes, disk.Size)
		// Everything the points of k's chain up to k wrote: the data of
		// point k.
		changed, err := ChangedSince(set, aipimage.ChainStart(set.Points(), k)-1, k, d)
		if err != nil {
			return Result{}, err
		}
		delta, err := PlanDelta(point, d, changed, nil, plan, SectorSize)
		if err != nil {
			return Result{}, err
		}
		bases = append(bases, delta)
		written += delta.Bytes()
		s.emit(Event{Sequence: info.Sequence, Step: "base", Bytes: written})
	}
	vm, err := s.Hypervisor.CreateStandby(s.withTransfers(ctx, info.Sequence, written), spec, bases)
	if err != nil {
		return Result{}, err
	}
	s.emit(Event{Sequence: info.Sequence, Step: "snapshot", Bytes: written})
	snap, err := s.Hypervisor.AddBootPoint(ctx, vm, nil, name, meta.Description())
	if err != nil {
		// A VM without its first boot point is of no use and would block
		// the retry: remove it.
		if derr := s.Hypervisor.DestroyVM(context.WithoutCancel(ctx), vm); derr != nil {
			return Result{}, errors.Join(err, fmt.Errorf("removing the half-created VM: %w", derr))
		}
		return Result{}, err
	}
	res := Result{BootPoint: BootPoint{Snapshot: snap, Meta: meta}, Bytes: written}
	if err := s.checkWritten(ctx, vm, &res, bases, func(ctx context.Context) error {
		return s.Hypervisor.DestroyVM(ctx, vm)
	}); err != nil {
		return Result{}, err
	}
	s.logger().Info("standby VM created", "vm", vm.Name, "sequence", info.Sequence, "bytes", written)
	s.emit(Event{Sequence: info.Sequence, Step: "done", Bytes: written})
	res.Duration = time.Since(start)
	return res, nil
}

// DefaultMaxBootPoints is ESXi's snapshot chain depth limit.
const DefaultMaxBootPoints = 30

// limit is the cap on boot points in force.
func (s *Standby) limit() int {
	if s.MaxBootPoints <= 0 || s.MaxBootPoints > DefaultMaxBootPoints {
		return DefaultMaxBootPoints
	}
	return s.MaxBootPoints
}

// Prune consolidates the oldest boot points beyond the cap. Add does it
// after each boot point; a run interrupted in between leaves more, which
// the next Sync or manager pass removes.
func (s *Standby) Prune(ctx context.Context) error {
	vm, err := s.Hypervisor.FindVM(ctx, s.VM.Name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.prune(ctx, vm)
}

func (s *Standby) prune(ctx context.Context, vm VM) error {
	limit := s.limit()
	_, bps, err := s.BootPoints(ctx)
	if err != nil {
		return err
	}
	removed := len(bps) > limit
	for len(bps) > limit {
		oldest := bps[0]
		if err := s.Hypervisor.RemoveSnapshot(ctx, vm, oldest.Snapshot); err != nil {
			return err
		}
		s.logger().Info("oldest boot point consolidated", "vm", vm.Name, "sequence", oldest.Meta.Sequence)
		bps = bps[1:]
	}
	if !removed {
		return nil
	}
	// Check the result: exactly the newer boot points remain, in order.
	_, after, err := s.BootPoints(ctx)
	if err != nil {
		return err
	}
	if len(after) != len(bps) {
		return fmt.Errorf("%w: %d boot points after consolidation, expected %d", ErrConsolidation, len(after), len(bps))
	}
	for i := range after {
		if after[i].Snapshot.ID != bps[i].Snapshot.ID || after[i].Meta.PointID != bps[i].Meta.PointID {
			return fmt.Errorf("%w: boot point %d is not the one expected after consolidation", ErrConsolidation, after[i].Meta.Sequence)
		}
	}
	return nil
}

// ErrConsolidation reports boot points that do not look as they should
// after the oldest were consolidated.
var ErrConsolidation = errors.New("bootpoint: consolidation left unexpected boot points")

// MismatchError reports a boot point whose disk differs from its point.
type MismatchError struct {
	Sequence int
	Disk     int
	Offset   int64 // first differing byte
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("bootpoint: boot point %d disk %d differs from point ⊕ patches at byte %d", e.Sequence, e.Disk, e.Offset)
}

// Verify reads every disk of boot point bp back from the hypervisor and
// compares it with its point ⊕ patches. A difference is a *MismatchError.
// VerifyBootPoint does the same, or only what a boot point wrote, and
// reports what it read.
func (s *Standby) Verify(ctx context.Context, set aipimage.Set, bp BootPoint) error {
	vm, err := s.Hypervisor.FindVM(ctx, s.VM.Name)
	if err != nil {
		return err
	}
	_, err = s.verify(ctx, set, vm, bp, nil, true)
	return err
}
