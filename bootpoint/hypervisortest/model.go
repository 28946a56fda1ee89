package hypervisortest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/internal/extent"
)

// gen makes the disk contents of the suite: deterministic pseudo-random
// data in sector-aligned ranges.
type gen struct {
	rng   *rand.Rand
	sizes []int64
}

func newGen(seed uint64, sizes []int64) *gen {
	return &gen{rng: rand.New(rand.NewPCG(seed, 0x5eed)), sizes: sizes}
}

const (
	sector = bootpoint.SectorSize
	kib64  = 64 << 10
	mib2   = 2 << 20
)

// sectors returns a random length of 1 to n sectors.
func (g *gen) sectors(n int64) int64 { return (1 + g.rng.Int64N(n)) * sector }

// around adds a range across boundary b: up to before bytes before it, up
// to after bytes after it.
func (g *gen) around(s *extent.Set, b, before, after int64) {
	lo := b - g.sectors(before/sector)
	hi := b + g.sectors(after/sector)
	s.Add(lo, hi-lo)
}

// boundary returns a random multiple of unit strictly inside a disk of
// size bytes, or 0 when there is none.
func (g *gen) boundary(size, unit int64) int64 {
	n := (size - 1) / unit
	if n == 0 {
		return 0
	}
	return (1 + g.rng.Int64N(n)) * unit
}

// ranges returns random sector-aligned ranges of a disk of size bytes:
// small ones anywhere, one across a 64 KiB boundary, often one across a
// 2 MiB boundary and one at the very end of the disk (always with end).
func (g *gen) ranges(size int64, small int, end bool) []aipimage.Extent {
	var s extent.Set
	for range small {
		off := g.rng.Int64N(size/sector) * sector
		s.Add(off, g.sectors(16))
	}
	if b := g.boundary(size, kib64); b > 0 {
		g.around(&s, b, 8*sector, 8*sector)
	}
	if b := g.boundary(size, mib2); b > 0 && g.rng.IntN(3) > 0 {
		g.around(&s, b, 100<<10, 300<<10)
	}
	if end || g.rng.IntN(2) == 0 {
		n := g.sectors(8)
		s.Add(size-n, n)
	}
	return s.Clip(0, size).Extents()
}

// fill writes random bytes into b (whose length is a multiple of 8).
func (g *gen) fill(b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], g.rng.Uint64())
	}
}

// base returns the content of a first point (data in scattered ranges,
// holes of zeros elsewhere) and the deltas CreateStandby takes for it.
func (g *gen) base() ([][]byte, []bootpoint.Delta) {
	content := make([][]byte, len(g.sizes))
	deltas := make([]bootpoint.Delta, len(g.sizes))
	for d, size := range g.sizes {
		content[d] = make([]byte, size)
		exts := g.ranges(size, 8, true)
		for _, e := range exts {
			g.fill(content[d][e.Off:e.End()])
		}
		deltas[d] = bootpoint.Delta{Disk: d, Size: size, Extents: exts, Source: bytes.NewReader(content[d])}
	}
	return content, deltas
}

// next returns prev with random changes on the given disks, and those
// changes in the order of disks. prev is not modified.
func (g *gen) next(prev [][]byte, disks ...int) ([][]byte, []bootpoint.Delta) {
	content := slices.Clone(prev)
	var changes []bootpoint.Delta
	for _, d := range disks {
		content[d] = bytes.Clone(prev[d])
		size := g.sizes[d]
		exts := g.ranges(size, 1+g.rng.IntN(3), false)
		for _, e := range exts {
			g.fill(content[d][e.Off:e.End()])
		}
		changes = append(changes, bootpoint.Delta{Disk: d, Size: size, Extents: exts, Source: bytes.NewReader(content[d]), Base: bytes.NewReader(prev[d])})
	}
	return content, changes
}

// allDisks returns 0..n-1.
func allDisks(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// pointDisks says which disks point k (k ≥ 1) of n changes: every third
// changes only one, point noChange none, one point lists them backwards,
// the others all.
func pointDisks(k, ndisks, noChange int) []int {
	switch {
	case k == noChange:
		return nil
	case k%3 == 2:
		return []int{k % ndisks}
	case k%4 == 3:
		d := allDisks(ndisks)
		slices.Reverse(d)
		return d
	default:
		return allDisks(ndisks)
	}
}

// apply returns content with changes written into it, as a hypervisor
// must: the Source's bytes inside each change's extents.
func apply(content [][]byte, changes []bootpoint.Delta) ([][]byte, error) {
	out := slices.Clone(content)
	for _, c := range changes {
		if c.Disk < 0 || c.Disk >= len(out) {
			return nil, fmt.Errorf("change for disk %d of %d", c.Disk, len(out))
		}
		out[c.Disk] = bytes.Clone(out[c.Disk])
		if err := write(out[c.Disk], c.Extents, c.Source); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mismatchError reports a snapshot whose disk does not read back as it
// must.
type mismatchError struct {
	Snapshot string // name
	Disk     int
	Offset   int64 // first differing byte
	Detail   string
}

func (e *mismatchError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("snapshot %q disk %d: %s", e.Snapshot, e.Disk, e.Detail)
	}
	return fmt.Sprintf("snapshot %q disk %d differs from what it must hold at byte %d", e.Snapshot, e.Disk, e.Offset)
}

// readBack reads every disk of snapshot s through OpenDisk and compares it
// in full with want; a difference is a *mismatchError. It also reads a few
// windows at unaligned offsets, and across the end of the disk, which an
// io.ReaderAt must answer with a short count and an error.
func readBack(ctx context.Context, hv bootpoint.Hypervisor, vm bootpoint.VM, s bootpoint.Snapshot, want [][]byte) error {
	buf := make([]byte, readChunk)
	for d, w := range want {
		if err := readDisk(ctx, hv, vm, s, d, w, buf); err != nil {
			return err
		}
	}
	return nil
}

const readChunk = 1 << 20

func readDisk(ctx context.Context, hv bootpoint.Hypervisor, vm bootpoint.VM, s bootpoint.Snapshot, d int, want, buf []byte) (err error) {
	disk, err := hv.OpenDisk(ctx, vm, s, d)
	if err != nil {
		return fmt.Errorf("opening disk %d of snapshot %q: %w", d, s.Name, err)
	}
	defer func() {
		if cerr := disk.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing disk %d of snapshot %q: %w", d, s.Name, cerr)
		}
	}()
	size := int64(len(want))
	if disk.Size() != size {
		return &mismatchError{Snapshot: s.Name, Disk: d, Detail: fmt.Sprintf("size %d, want %d", disk.Size(), size)}
	}
	for off := int64(0); off < size; off += readChunk {
		n := min(readChunk, size-off)
		got, err := disk.ReadAt(buf[:n], off)
		if int64(got) < n || err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading disk %d of snapshot %q at %d: %d of %d bytes: %v", d, s.Name, off, got, n, err)
		}
		if i := firstDiff(buf[:n], want[off:off+n]); i >= 0 {
			return &mismatchError{Snapshot: s.Name, Disk: d, Offset: off + int64(i)}
		}
	}
	// Unaligned windows, and one across the end.
	for _, win := range [][2]int64{{size/3 + 7, 1001}, {size - 4097, 3000}, {size - 300, 1000}, {size, 10}} {
		off, n := win[0], win[1]
		if off < 0 {
			continue
		}
		got, err := disk.ReadAt(buf[:n], off)
		in := max(0, min(n, size-off))
		if int64(got) != in || in < n && err == nil || in == n && err != nil && !errors.Is(err, io.EOF) {
			return &mismatchError{Snapshot: s.Name, Disk: d, Detail: fmt.Sprintf("ReadAt of %d bytes at %d: %d bytes, error %v; want %d bytes and an error past the end", n, off, got, err, in)}
		}
		if i := firstDiff(buf[:got], want[off:off+int64(got)]); i >= 0 {
			return &mismatchError{Snapshot: s.Name, Disk: d, Offset: off + int64(i), Detail: fmt.Sprintf("differs at byte %d reading %d bytes at %d", off+int64(i), n, off)}
		}
	}
	return nil
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// chain tracks what a VM must show: its snapshots in creation order with
// the content each must hold, the current one, and the content of the
// current state.
type chain struct {
	hv      bootpoint.Hypervisor
	vm      bootpoint.VM
	snaps   []tracked
	current string // snapshot ID; "" for none
	state   [][]byte
	seq     int // of the next name
}

type tracked struct {
	snap   bootpoint.Snapshot
	parent string
	disks  [][]byte
}

// create makes the VM of spec with the content of bases.
func (c *chain) create(ctx context.Context, spec bootpoint.VMSpec, content [][]byte, bases []bootpoint.Delta) error {
	vm, err := c.hv.CreateStandby(ctx, spec, bases)
	if err != nil {
		return fmt.Errorf("CreateStandby: %w", err)
	}
	if vm.Name != spec.Name || vm.ID == "" {
		return fmt.Errorf("CreateStandby returned %+v for VM %q", vm, spec.Name)
	}
	c.vm, c.state = vm, content
	if err := c.checkList(ctx); err != nil {
		return fmt.Errorf("after CreateStandby, which takes no snapshot: %w", err)
	}
	found, err := c.hv.FindVM(ctx, spec.Name)
	if err != nil {
		return fmt.Errorf("FindVM after CreateStandby: %w", err)
	}
	if found.ID != vm.ID || found.Name != vm.Name || found.Annotation != spec.Annotation {
		return fmt.Errorf("FindVM returned %+v, CreateStandby %+v with annotation %q", found, vm, spec.Annotation)
	}
	return nil
}

// names returns the name and description of the next boot point.
func (c *chain) names() (string, string) {
	seq := c.seq
	c.seq++
	t := epoch.AddDate(0, 0, seq)
	m := bootpoint.Metadata{SetID: "conformance", PointID: fmt.Sprintf("point-%d", seq), Sequence: seq, PointTime: t, PatchDigest: "none", Library: "hypervisortest"}
	return bootpoint.SnapshotName(seq, t), m.Description()
}

// add adds a boot point with changes; the content it must hold is the
// current state with the changes written into it.
func (c *chain) add(ctx context.Context, changes []bootpoint.Delta) (bootpoint.Snapshot, error) {
	want, err := apply(c.state, changes)
	if err != nil {
		return bootpoint.Snapshot{}, fmt.Errorf("suite: %w", err)
	}
	name, desc := c.names()
	s, err := c.hv.AddBootPoint(ctx, c.vm, changes, name, desc)
	if err != nil {
		return bootpoint.Snapshot{}, fmt.Errorf("AddBootPoint %q: %w", name, err)
	}
	if s.ID == "" || s.Name != name || s.Description != desc {
		return s, fmt.Errorf("AddBootPoint %q returned %+v", name, s)
	}
	c.snaps = append(c.snaps, tracked{snap: s, parent: c.current, disks: want})
	c.current, c.state = s.ID, want
	return s, c.check(ctx)
}

func (c *chain) index(id string) int {
	return slices.IndexFunc(c.snaps, func(t tracked) bool { return t.snap.ID == id })
}

// remove removes snapshot i (in creation order).
func (c *chain) remove(ctx context.Context, i int) error {
	gone := c.snaps[i]
	if err := c.hv.RemoveSnapshot(ctx, c.vm, gone.snap); err != nil {
		return fmt.Errorf("RemoveSnapshot %q: %w", gone.snap.Name, err)
	}
	for j := range c.snaps {
		if c.snaps[j].parent == gone.snap.ID {
			c.snaps[j].parent = gone.parent
		}
	}
	if c.current == gone.snap.ID {
		c.current = gone.parent
	}
	c.snaps = slices.Delete(c.snaps, i, i+1)
	return c.check(ctx)
}

// revert reverts to snapshot i (in creation order).
func (c *chain) revert(ctx context.Context, i int) error {
	to := c.snaps[i]
	if err := c.hv.Revert(ctx, c.vm, to.snap); err != nil {
		return fmt.Errorf("Revert to %q: %w", to.snap.Name, err)
	}
	c.current, c.state = to.snap.ID, to.disks
	return c.check(ctx)
}

// check lists the snapshots and reads every one back: they must be the
// tracked ones, oldest first, with their names and descriptions, the
// tracked one current, and each disk must hold its content.
func (c *chain) check(ctx context.Context) error {
	if err := c.checkList(ctx); err != nil {
		return err
	}
	for _, t := range c.snaps {
		if err := readBack(ctx, c.hv, c.vm, t.snap, t.disks); err != nil {
			return err
		}
	}
	return nil
}

func (c *chain) checkList(ctx context.Context) error {
	list, err := c.hv.Snapshots(ctx, c.vm)
	if err != nil {
		return fmt.Errorf("Snapshots: %w", err)
	}
	describe := func() string {
		var b bytes.Buffer
		for _, s := range list {
			fmt.Fprintf(&b, "\n\t%s %q current=%v created=%v", s.ID, s.Name, s.Current, s.Created)
		}
		b.WriteString("\nwant:")
		for _, t := range c.snaps {
			fmt.Fprintf(&b, "\n\t%s %q current=%v", t.snap.ID, t.snap.Name, t.snap.ID == c.current)
		}
		return b.String()
	}
	if len(list) != len(c.snaps) {
		return fmt.Errorf("%d snapshots, want %d:%s", len(list), len(c.snaps), describe())
	}
	for i, s := range list {
		w := c.snaps[i].snap
		switch {
		case s.ID != w.ID || s.Name != w.Name || s.Description != w.Description:
			return fmt.Errorf("snapshot %d is %s %q (description %q), want %s %q (description %q):%s", i, s.ID, s.Name, s.Description, w.ID, w.Name, w.Description, describe())
		case s.Current != (s.ID == c.current):
			return fmt.Errorf("snapshot %d %q: current=%v, want %v:%s", i, s.Name, s.Current, !s.Current, describe())
		case s.Created.IsZero() || i > 0 && s.Created.Before(list[i-1].Created):
			return fmt.Errorf("snapshot %d %q created %v: not listed oldest first:%s", i, s.Name, s.Created, describe())
		}
	}
	return nil
}
