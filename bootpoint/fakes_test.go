package bootpoint

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// memHypervisor keeps VMs, files and snapshots in memory. fail, when set,
// is consulted before each step and can inject a failure.
type memHypervisor struct {
	mu   sync.Mutex
	vms  map[string]*memVM
	fail func(step string) error
	now  time.Time
	ids  int
	// slow, when set, makes AddBootPoint take that long, and inFlight and
	// maxInFlight count the boot points being added at once.
	slow        time.Duration
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
}

type memVM struct {
	spec      VMSpec
	files     map[string][]byte
	leaves    []string // current leaf file per disk
	parents   map[string]string
	extentOf  map[string]string
	snapshots []memSnapshot
	powered   bool
	current   int // index of the current snapshot, -1 without
}

type memSnapshot struct {
	Snapshot
	leaves []string
}

func newMemHypervisor() *memHypervisor {
	return &memHypervisor{vms: map[string]*memVM{}, now: time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)}
}

func (h *memHypervisor) step(name string) error {
	if h.fail != nil {
		return h.fail(name)
	}
	return nil
}

func (h *memHypervisor) CreateStandby(ctx context.Context, spec VMSpec, bases []File) (VM, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.vms[spec.Name]; ok {
		return VM{}, fmt.Errorf("VM %s exists", spec.Name)
	}
	if err := h.step("create"); err != nil {
		return VM{}, err
	}
	vm := &memVM{spec: spec, files: map[string][]byte{}, parents: map[string]string{}, extentOf: map[string]string{}, current: -1}
	for d, b := range bases {
		data, err := readFile(b)
		if err != nil {
			return VM{}, err
		}
		name := fmt.Sprintf("%s_%d.vmdk", spec.Name, d)
		vm.files[name] = data
		vm.leaves = append(vm.leaves, name)
	}
	h.vms[spec.Name] = vm
	return VM{Name: spec.Name, ID: "vm-" + spec.Name}, nil
}

func readFile(f File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (h *memHypervisor) vm(v VM) (*memVM, error) {
	vm, ok := h.vms[v.Name]
	if !ok {
		return nil, ErrNotFound
	}
	return vm, nil
}

func (h *memHypervisor) FindVM(ctx context.Context, name string) (VM, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, ok := h.vms[name]
	if !ok {
		return VM{}, ErrNotFound
	}
	return VM{Name: name, ID: "vm-" + name, Annotation: vm.spec.Annotation}, nil
}

func (h *memHypervisor) DestroyVM(ctx context.Context, v VM) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.vms, v.Name)
	return nil
}

func (h *memHypervisor) LeafDescriptor(ctx context.Context, v VM, disk int) (string, []byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, err := h.vm(v)
	if err != nil {
		return "", nil, err
	}
	name := vm.leaves[disk]
	return name, vm.files[name], nil
}

func (h *memHypervisor) AddBootPoint(ctx context.Context, v VM, deltas []DiskDelta, name, description string) (Snapshot, error) {
	n := h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	for {
		m := h.maxInFlight.Load()
		if n <= m || h.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(h.slow)
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, err := h.vm(v)
	if err != nil {
		return Snapshot{}, err
	}
	// Upload everything first; on failure nothing stays.
	staged := map[string][]byte{}
	for _, d := range deltas {
		if err := h.step("upload"); err != nil {
			return Snapshot{}, err
		}
		for _, f := range []File{d.Descriptor, d.Extent} {
			data, err := readFile(f)
			if err != nil {
				return Snapshot{}, err
			}
			staged[f.Name] = data
		}
	}
	if err := h.step("snapshot"); err != nil {
		return Snapshot{}, err
	}
	leaves := append([]string(nil), vm.leaves...)
	for _, d := range deltas {
		vm.parents[d.Descriptor.Name] = leaves[d.Disk]
		vm.extentOf[d.Descriptor.Name] = d.Extent.Name
		leaves[d.Disk] = d.Descriptor.Name
	}
	maps.Copy(vm.files, staged)
	vm.leaves = leaves
	h.now = h.now.Add(time.Hour)
	h.ids++
	s := Snapshot{ID: fmt.Sprintf("snapshot-%d", h.ids), Name: name, Description: description, Created: h.now}
	vm.snapshots = append(vm.snapshots, memSnapshot{Snapshot: s, leaves: append([]string(nil), leaves...)})
	vm.current = len(vm.snapshots) - 1
	return s, nil
}

func (h *memHypervisor) Snapshots(ctx context.Context, v VM) ([]Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, err := h.vm(v)
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, s := range vm.snapshots {
		out = append(out, s.Snapshot)
	}
	return out, nil
}

// snapshot finds a VM's snapshot; the caller holds h.mu.
func (h *memHypervisor) snapshot(v VM, s Snapshot) (*memVM, int, error) {
	vm, err := h.vm(v)
	if err != nil {
		return nil, 0, err
	}
	for i, x := range vm.snapshots {
		if x.ID == s.ID {
			return vm, i, nil
		}
	}
	return nil, 0, ErrNotFound
}

func (h *memHypervisor) RemoveSnapshot(ctx context.Context, v VM, s Snapshot) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, i, err := h.snapshot(v, s)
	if err != nil {
		return err
	}
	if err := h.step("remove"); err != nil {
		return err
	}
	vm.snapshots = append(vm.snapshots[:i], vm.snapshots[i+1:]...)
	return nil
}

func (h *memHypervisor) Revert(ctx context.Context, v VM, s Snapshot) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, i, err := h.snapshot(v, s)
	if err != nil {
		return err
	}
	vm.current = i
	vm.leaves = append([]string(nil), vm.snapshots[i].leaves...)
	return nil
}

func (h *memHypervisor) SetPower(ctx context.Context, v VM, on bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, err := h.vm(v)
	if err != nil {
		return err
	}
	vm.powered = on
	return nil
}

func (h *memHypervisor) DiskChain(ctx context.Context, v VM, s Snapshot, disk int) ([]RemoteFile, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, i, err := h.snapshot(v, s)
	if err != nil {
		return nil, err
	}
	var out []RemoteFile
	add := func(name string) {
		data := vm.files[name]
		out = append(out, RemoteFile{Name: name, Size: int64(len(data)), Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}})
	}
	for name := vm.snapshots[i].leaves[disk]; name != ""; name = vm.parents[name] {
		add(name)
		if ext := vm.extentOf[name]; ext != "" {
			add(ext)
		}
	}
	return out, nil
}

// rawFormat is a DiskFormat for tests: the base is a raw image, a delta is
// a descriptor naming its parent and an extent of (offset, length, data)
// records.
type rawFormat struct {
	grain int64
	mu    sync.Mutex
	n     int
	// drop, when set, loses the last extent of every delta (a bug the
	// verification must catch).
	drop bool
}

func (f *rawFormat) Grain() int64 { return f.grain }

func (f *rawFormat) Base(ctx context.Context, vm string, d Delta) (File, error) {
	img := make([]byte, d.Size)
	for _, e := range d.Extents {
		if _, err := d.Source.ReadAt(img[e.Off:e.End()], e.Off); err != nil && !errors.Is(err, io.EOF) {
			return File{}, err
		}
	}
	return memFile(vm+"-base", img), nil
}

func memFile(name string, data []byte) File {
	return File{Name: name, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

func (f *rawFormat) Delta(ctx context.Context, parent string, parentDesc []byte, d Delta) (DiskDelta, error) {
	f.mu.Lock()
	f.n++
	name := fmt.Sprintf("delta-%06d", f.n)
	f.mu.Unlock()
	var ext bytes.Buffer
	exts := d.Extents
	if f.drop && len(exts) > 0 {
		exts = exts[:len(exts)-1]
	}
	for _, e := range exts {
		binary.Write(&ext, binary.LittleEndian, [2]int64{e.Off, e.Len})
		buf := make([]byte, e.Len)
		if _, err := d.Source.ReadAt(buf, e.Off); err != nil && !errors.Is(err, io.EOF) {
			return DiskDelta{}, err
		}
		ext.Write(buf)
	}
	return DiskDelta{Disk: d.Disk,
		Descriptor: memFile(name+".vmdk", []byte("parent="+parent+"\nextent="+name+"-delta.vmdk\n")),
		Extent:     memFile(name+"-delta.vmdk", ext.Bytes())}, nil
}

// OpenChain rebuilds the leaf's content: files holds every file of the
// chain, the leaf descriptor first; descriptors name their parent and
// extent, and the chain ends at the raw base.
func (f *rawFormat) OpenChain(ctx context.Context, files []RemoteFile, size int64) (io.ReaderAt, io.Closer, error) {
	if len(files) == 0 {
		return nil, nil, errors.New("empty chain")
	}
	byName := map[string][]byte{}
	for _, rf := range files {
		rc, err := rf.Open(ctx)
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, nil, err
		}
		byName[rf.Name] = b
	}
	var deltas [][]byte // leaf first
	name := files[0].Name
	for {
		content, ok := byName[name]
		if !ok {
			return nil, nil, fmt.Errorf("chain file %s missing", name)
		}
		parent, extent, isDelta := parseRawDescriptor(content)
		if !isDelta {
			img := bytes.Clone(content)
			for i := len(deltas) - 1; i >= 0; i-- {
				for b := deltas[i]; len(b) >= 16; {
					off, n := int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:]))
					copy(img[off:off+n], b[16:16+n])
					b = b[16+n:]
				}
			}
			if int64(len(img)) < size {
				return nil, nil, fmt.Errorf("base of %d bytes, want %d", len(img), size)
			}
			return bytes.NewReader(img[:size]), io.NopCloser(nil), nil
		}
		ext, ok := byName[extent]
		if !ok {
			return nil, nil, fmt.Errorf("extent %s missing", extent)
		}
		deltas = append(deltas, ext)
		name = parent
	}
}

func parseRawDescriptor(b []byte) (parent, extent string, ok bool) {
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "parent=") || !strings.HasPrefix(lines[1], "extent=") {
		return "", "", false
	}
	return strings.TrimPrefix(lines[0], "parent="), strings.TrimPrefix(lines[1], "extent="), true
}

func (h *memHypervisor) ConnectNetwork(ctx context.Context, v VM, network string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, err := h.vm(v)
	if err != nil {
		return err
	}
	vm.spec.Network, vm.spec.ConnectNIC = network, true
	return nil
}

func (h *memHypervisor) CloneForTest(ctx context.Context, v VM, s Snapshot, name, network string) (VM, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, i, err := h.snapshot(v, s)
	if err != nil {
		return VM{}, err
	}
	spec := vm.spec
	spec.Name, spec.Network, spec.ConnectNIC = name, network, true
	clone := &memVM{spec: spec, files: vm.files, parents: vm.parents, extentOf: vm.extentOf, current: -1,
		leaves: append([]string(nil), vm.snapshots[i].leaves...)}
	h.vms[name] = clone
	return VM{Name: name, ID: "vm-" + name}, nil
}
