package esx

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
)

const (
	sectorSize = 512
	// maxDescriptor bounds a text descriptor or an embedded one.
	maxDescriptor = 1 << 20
)

// sparseMagic starts a hosted sparse or streamOptimized VMDK, whose
// descriptor is embedded.
var sparseMagic = []byte("KDMV")

// leafBacking is the backing the next delta of disk d must name as its
// parent. It is the disk's current backing, except when that is an
// unrecorded child of the current snapshot's backing: the empty redo log
// ESXi creates with each snapshot, which the next delta replaces.
func (h *Host) leafBacking(ctx context.Context, s *vmState, d int) (cur, parent *types.VirtualDiskFlatVer2BackingInfo, err error) {
	list := disks(s.mo.Config)
	if d < 0 || d >= len(list) {
		return nil, nil, fmt.Errorf("%w: VM %s has %d disks, not disk %d", errNoDisk, s.mo.Name, len(list), d)
	}
	cur = flat(list[d])
	if cur == nil {
		return nil, nil, fmt.Errorf("esx: VM %s disk %d: unsupported backing %T", s.mo.Name, d, list[d].Backing)
	}
	if s.mo.Snapshot == nil || s.mo.Snapshot.CurrentSnapshot == nil || cur.Parent == nil {
		return cur, cur, nil
	}
	configs, err := h.snapshotConfigs(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	snapDisks := disks(configs[s.mo.Snapshot.CurrentSnapshot.Value])
	if d >= len(snapDisks) {
		return cur, cur, nil
	}
	snap := flat(snapDisks[d])
	if snap != nil && cur.FileName != snap.FileName && cur.Parent.FileName == snap.FileName && !recorded(cur.FileName, configs) {
		return cur, snap, nil
	}
	return cur, cur, nil
}

// relName is the name of datastore file p relative to the VM's folder,
// as descriptors name their parents and extents.
func relName(s *vmState, p string) (string, error) {
	var dp object.DatastorePath
	if !dp.FromString(p) {
		return "", fmt.Errorf("esx: bad datastore path %q", p)
	}
	if dp.Datastore != s.ds.Name() {
		return "", fmt.Errorf("esx: %s is on another datastore than VM %s", p, s.mo.Name)
	}
	if path.Dir(dp.Path) == s.dir {
		return path.Base(dp.Path), nil
	}
	return "../" + dp.Path, nil // a sibling folder: "../other/x.vmdk"
}

// LeafDescriptor implements bootpoint.Hypervisor. name is relative to the
// VM's folder. For a sparse or streamOptimized file (an imported base on
// vcsim) content is its embedded descriptor.
func (h *Host) LeafDescriptor(ctx context.Context, vm bootpoint.VM, disk int) (string, []byte, error) {
	s, err := h.load(ctx, vm)
	if err != nil {
		return "", nil, err
	}
	_, leaf, err := h.leafBacking(ctx, s, disk)
	if err != nil {
		return "", nil, err
	}
	name, err := relName(s, leaf.FileName)
	if err != nil {
		return "", nil, err
	}
	desc, _, err := h.readDescriptor(ctx, s.ds, path.Join(s.dir, name))
	if err != nil {
		return "", nil, err
	}
	return name, desc, nil
}

// readDescriptor reads a descriptor file, or the descriptor embedded in a
// sparse VMDK (then embedded is true: the file is also its own extent).
func (h *Host) readDescriptor(ctx context.Context, ds *object.Datastore, p string) (desc []byte, embedded bool, err error) {
	head, err := h.readRange(ctx, ds, p, 0, sectorSize)
	if err != nil {
		return nil, false, err
	}
	if !bytes.HasPrefix(head, sparseMagic) {
		all, err := h.readRange(ctx, ds, p, 0, maxDescriptor+1)
		if err != nil {
			return nil, false, err
		}
		if len(all) > maxDescriptor {
			return nil, false, fmt.Errorf("esx: %s: not a descriptor (larger than %d bytes)", ds.Path(p), maxDescriptor)
		}
		return all, false, nil
	}
	if len(head) < 44 {
		return nil, false, fmt.Errorf("esx: %s: short sparse header", ds.Path(p))
	}
	off := binary.LittleEndian.Uint64(head[28:36])
	size := binary.LittleEndian.Uint64(head[36:44])
	if off == 0 || size == 0 {
		return nil, true, fmt.Errorf("esx: %s: sparse file without embedded descriptor", ds.Path(p))
	}
	if size*sectorSize > maxDescriptor || off > 1<<40 {
		return nil, true, fmt.Errorf("esx: %s: embedded descriptor out of bounds", ds.Path(p))
	}
	b, err := h.readRange(ctx, ds, p, int64(off)*sectorSize, int64(size)*sectorSize)
	if err != nil {
		return nil, true, err
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return b, true, nil
}

// readRange reads up to n bytes of a datastore file from offset, with a
// ranged download when the transport has one.
func (h *Host) readRange(ctx context.Context, ds *object.Datastore, p string, offset, n int64) ([]byte, error) {
	t := h.transport()
	var r io.ReadCloser
	var err error
	if rd, ok := t.(RangeDownloader); ok {
		r, err = rd.DownloadRange(ctx, ds, p, offset, n)
	} else {
		r, _, err = t.Download(ctx, ds, p)
		if err == nil {
			_, err = io.CopyN(io.Discard, r, offset)
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
	}
	if err != nil {
		if r != nil {
			r.Close()
		}
		return nil, fmt.Errorf("esx: reading %s: %w", ds.Path(p), err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, fmt.Errorf("esx: reading %s: %w", ds.Path(p), err)
	}
	return b, nil
}

// extentFiles lists the files a descriptor's extent lines name:
// `RW <sectors> <TYPE> "<file>" [offset]`.
func extentFiles(desc []byte) []string {
	var out []string
	for line := range strings.Lines(string(desc)) {
		f := strings.Fields(line)
		if len(f) < 4 || (f[0] != "RW" && f[0] != "RDONLY" && f[0] != "NOACCESS") {
			continue
		}
		i := strings.IndexByte(line, '"')
		j := strings.LastIndexByte(line, '"')
		if i < 0 || j <= i+1 {
			continue
		}
		out = append(out, line[i+1:j])
	}
	return out
}

// DiskChain implements bootpoint.Hypervisor from the backing chain that
// snapshot sn recorded for disk d: each descriptor, then its extents, leaf
// first. Names are relative to the VM's folder.
func (h *Host) DiskChain(ctx context.Context, vm bootpoint.VM, sn bootpoint.Snapshot, disk int) ([]bootpoint.RemoteFile, error) {
	s, err := h.load(ctx, vm)
	if err != nil {
		return nil, err
	}
	t, err := findSnapshot(s, sn)
	if err != nil {
		return nil, err
	}
	cfg, err := h.snapshotConfig(ctx, t.Snapshot)
	if err != nil {
		return nil, err
	}
	list := disks(cfg)
	if disk < 0 || disk >= len(list) {
		return nil, fmt.Errorf("%w: snapshot %q of VM %s has %d disks, not disk %d", errNoDisk, t.Name, s.mo.Name, len(list), disk)
	}
	b := flat(list[disk])
	if b == nil {
		return nil, fmt.Errorf("esx: VM %s disk %d: unsupported backing %T", s.mo.Name, disk, list[disk].Backing)
	}
	var out []bootpoint.RemoteFile
	seen := map[string]bool{}
	add := func(name string) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		out = append(out, h.remoteFile(s, name))
		return nil
	}
	for ; b != nil; b = b.Parent {
		name, err := relName(s, b.FileName)
		if err != nil {
			return nil, err
		}
		desc, embedded, err := h.readDescriptor(ctx, s.ds, path.Join(s.dir, name))
		if err != nil {
			return nil, err
		}
		if err := add(name); err != nil {
			return nil, err
		}
		if embedded {
			continue
		}
		for _, x := range extentFiles(desc) {
			if err := add(path.Join(path.Dir(name), x)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// remoteFile describes a file of the VM's folder (name relative to it).
// Its size is left unknown (-1): asking costs a datastore search, or a
// download where the datastore browser hides extents, and readers do not
// need it.
func (h *Host) remoteFile(s *vmState, name string) bootpoint.RemoteFile {
	p := path.Join(s.dir, name)
	ds, t := s.ds, h.transport()
	return bootpoint.RemoteFile{
		Name: name,
		Size: -1,
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			r, _, err := t.Download(ctx, ds, p)
			return r, err
		},
	}
}
