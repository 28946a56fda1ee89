package esx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
	"github.com/standbykit/standbykit/vmdk"
)

// descriptorWindow is how much of a disk file is read to find its
// descriptor: a text descriptor is far smaller, and the descriptor
// embedded in a sparse file sits right after its header.
const descriptorWindow = 128 << 10

// ErrLeafFormat reports a disk whose current leaf this package cannot
// fill by upload (it is not a vmfsSparse delta: VMFS6's SEsparse, vSAN).
var ErrLeafFormat = errors.New("esx: the current leaf cannot be written by upload")

// currentBacking is disk d's current backing.
func currentBacking(s *vmState, d int) (*types.VirtualDiskFlatVer2BackingInfo, error) {
	return diskOf(s.mo.Config, s.mo.Name, d)
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

// readDescriptor reads the descriptor of a disk file: a text descriptor,
// or the one embedded in a sparse VMDK (then embedded is true: the file
// is also its own extent). What the host returns is parsed as untrusted.
func (h *Host) readDescriptor(ctx context.Context, ds *object.Datastore, p string) (desc *vmdk.Descriptor, embedded bool, err error) {
	head, err := h.readRange(ctx, ds, p, 0, descriptorWindow+1)
	if err != nil {
		return nil, false, err
	}
	text, err := vmdk.EmbeddedDescriptor(head)
	if err != nil {
		return nil, false, fmt.Errorf("esx: %s: %w", ds.Path(p), err)
	}
	embedded = len(text) != len(head) || !bytes.Equal(text, head)
	if !embedded && len(head) > descriptorWindow {
		return nil, false, fmt.Errorf("esx: %s: not a descriptor (larger than %d bytes)", ds.Path(p), descriptorWindow)
	}
	desc, err = vmdk.ParseDescriptor(text)
	if err != nil {
		return nil, false, fmt.Errorf("esx: %s: %w", ds.Path(p), err)
	}
	return desc, embedded, nil
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

// chainFiles lists every file of the disk chain that backing b heads:
// each descriptor, then its extents, leaf first. Names are relative to
// the VM's folder.
func (h *Host) chainFiles(ctx context.Context, s *vmState, b *types.VirtualDiskFlatVer2BackingInfo) ([]remoteFile, error) {
	var out []remoteFile
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, h.remoteFile(s, name))
		}
	}
	for ; b != nil; b = b.Parent {
		if len(seen) > 4*maxChainLinks {
			return nil, fmt.Errorf("esx: VM %s: disk chain longer than %d links", s.mo.Name, maxChainLinks)
		}
		name, err := relName(s, b.FileName)
		if err != nil {
			return nil, err
		}
		desc, embedded, err := h.readDescriptor(ctx, s.ds, path.Join(s.dir, name))
		if err != nil {
			return nil, err
		}
		add(name)
		if embedded {
			continue
		}
		for _, x := range desc.Extents {
			add(path.Join(path.Dir(name), x.File))
		}
	}
	return out, nil
}

// maxChainLinks bounds a chain the host reports (ESXi allows 32 links).
const maxChainLinks = 64

// OpenDisk implements bootpoint.Hypervisor: the chain snapshot sn recorded
// for disk d, downloaded and read with package vmdk.
func (h *Host) OpenDisk(ctx context.Context, vm bootpoint.VM, sn bootpoint.Snapshot, disk int) (bootpoint.Disk, error) {
	s, b, err := h.snapshotDisk(ctx, vm, sn, disk)
	if err != nil {
		return nil, err
	}
	files, err := h.chainFiles(ctx, s, b)
	if err != nil {
		return nil, err
	}
	if rd, ok := h.transport().(RangeDownloader); ok {
		chain, err := h.openRangedChain(ctx, s, rd, files)
		if err == nil {
			return rangedDisk{chain}, nil
		}
		h.logger().Warn("esx: reading the disk chain in place failed; downloading it whole", "vm", s.mo.Name, "err", err)
	}
	return h.openChain(ctx, files)
}

// rangedDisk is a disk chain read in place: a bootpoint.Disk.
type rangedDisk struct{ *vmdk.Chain }

// snapshotDisk is the backing snapshot sn recorded for disk d.
func (h *Host) snapshotDisk(ctx context.Context, vm bootpoint.VM, sn bootpoint.Snapshot, disk int) (*vmState, *types.VirtualDiskFlatVer2BackingInfo, error) {
	s, err := h.load(ctx, vm)
	if err != nil {
		return nil, nil, err
	}
	t, err := findSnapshot(s, sn)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := h.snapshotConfig(ctx, t.Snapshot)
	if err != nil {
		return nil, nil, err
	}
	b, err := diskOf(cfg, s.mo.Name, disk)
	return s, b, err
}

// remoteFile describes a file of the VM's folder (name relative to it).
func (h *Host) remoteFile(s *vmState, name string) remoteFile {
	p := path.Join(s.dir, name)
	ds, t := s.ds, h.transport()
	return remoteFile{
		Name: name,
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			r, _, err := t.Download(ctx, ds, p)
			return r, err
		},
	}
}

// ChainFiles lists the descriptors of disk d's chain at snapshot sn, leaf
// first, as datastore paths ("[datastore1] vm/vm-000002.vmdk"): which
// files a boot point is made of, and so which delta format the host
// chose.
func (h *Host) ChainFiles(ctx context.Context, vm bootpoint.VM, sn bootpoint.Snapshot, disk int) ([]string, error) {
	_, b, err := h.snapshotDisk(ctx, vm, sn, disk)
	if err != nil {
		return nil, err
	}
	var out []string
	for ; b != nil && len(out) <= maxChainLinks; b = b.Parent {
		out = append(out, b.FileName)
	}
	return out, nil
}

// diskOf is the backing of disk d in a configuration.
func diskOf(cfg *types.VirtualMachineConfigInfo, vmName string, d int) (*types.VirtualDiskFlatVer2BackingInfo, error) {
	list := vmdisks.Of(cfg)
	if d < 0 || d >= len(list) {
		return nil, fmt.Errorf("%w: VM %s has %d disks, not disk %d", errNoDisk, vmName, len(list), d)
	}
	b := vmdisks.Flat(list[d])
	if b == nil {
		return nil, fmt.Errorf("esx: VM %s disk %d: unsupported backing %T", vmName, d, list[d].Backing)
	}
	return b, nil
}
