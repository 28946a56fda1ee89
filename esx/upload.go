package esx

import (
	"context"
	"fmt"
	"io"
	"path"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/vmdk"
)

// maxEmptyLeaf bounds the download of a leaf's extent to check that it is
// empty: an empty vmfsSparse delta is a header and a grain directory (1
// MiB for a 2 TiB disk).
const maxEmptyLeaf = 16 << 20

// uploadWriter is WriterUpload: each leaf's descriptor and extent are
// replaced, through the datastore file interface, by a vmfsSparse delta
// with the same parent and names that holds the changes.
type uploadWriter struct{ h *Host }

type uploadWrite struct {
	h     *Host
	s     *vmState
	files []File // extent then descriptor, per disk
}

func (u uploadWriter) prepare(ctx context.Context, s *vmState, targets []leafTarget) (leafWrite, error) {
	if err := u.h.checkUploadDatastore(ctx, s); err != nil {
		return nil, err
	}
	w := &uploadWrite{h: u.h, s: s}
	for _, t := range targets {
		desc, ext, err := u.h.planLeaf(ctx, s, t.change, t.leaf)
		if err != nil {
			return nil, err
		}
		w.files = append(w.files, ext, desc)
	}
	return w, nil
}

func (w *uploadWrite) write(ctx context.Context) error {
	t := w.h.transport()
	for _, f := range w.files {
		if err := t.Upload(ctx, w.s.ds, path.Join(w.s.dir, f.Name), f); err != nil {
			return fmt.Errorf("uploading %s: %w", f.Name, err)
		}
		w.h.logger().Debug("esx: uploaded", "vm", w.s.mo.Name, "file", f.Name)
	}
	return nil
}

func (w *uploadWrite) cleanup(context.Context) error { return nil }

// checkUploadDatastore refuses the upload where ESXi's deltas are not
// vmfsSparse: VMFS6 and later (SEsparse), vSAN and vVols (objects).
func (h *Host) checkUploadDatastore(ctx context.Context, s *vmState) error {
	var ds mo.Datastore
	if err := s.ds.Properties(ctx, s.ds.Reference(), []string{"summary", "info"}, &ds); err != nil {
		return fmt.Errorf("esx: datastore %s: %w", s.ds.Name(), err)
	}
	switch ds.Summary.Type {
	case string(types.HostFileSystemVolumeFileSystemTypeNFS), string(types.HostFileSystemVolumeFileSystemTypeNFS41):
		return nil
	case string(types.HostFileSystemVolumeFileSystemTypeVMFS):
		if info, ok := ds.Info.(*types.VmfsDatastoreInfo); ok && info.Vmfs != nil && info.Vmfs.MajorVersion <= 5 {
			return nil
		}
		return fmt.Errorf("%w: datastore %s is VMFS 6 or later, whose deltas are SEsparse: use the writer appliance", ErrLeafFormat, s.ds.Name())
	}
	return fmt.Errorf("%w: datastore %s is %s: use the writer appliance", ErrLeafFormat, s.ds.Name(), ds.Summary.Type)
}

// planLeaf reads disk c.Disk's current leaf and its parent and prepares
// the leaf's new files, after checking that the leaf is a vmfsSparse
// delta and still empty.
func (h *Host) planLeaf(ctx context.Context, s *vmState, c bootpoint.Delta, cur *types.VirtualDiskFlatVer2BackingInfo) (descriptor, extent File, err error) {
	leafName, err := relName(s, cur.FileName)
	if err != nil {
		return File{}, File{}, err
	}
	parentName, err := relName(s, cur.Parent.FileName)
	if err != nil {
		return File{}, File{}, err
	}
	leaf, embedded, err := h.readDescriptor(ctx, s.ds, path.Join(s.dir, leafName))
	if err != nil {
		return File{}, File{}, err
	}
	if embedded || len(leaf.Extents) != 1 || leaf.Extents[0].Type != vmdk.ExtentVMFSSparse {
		return File{}, File{}, fmt.Errorf("%w: disk %d of VM %s: %s is %q", ErrLeafFormat, c.Disk, s.mo.Name, leafName, leaf.CreateType)
	}
	parent, _, err := h.readDescriptor(ctx, s.ds, path.Join(s.dir, parentName))
	if err != nil {
		return File{}, File{}, err
	}
	if leaf.ParentCID != parent.CID {
		return File{}, File{}, fmt.Errorf("esx: disk %d of VM %s: %s names parentCID %08x, its parent has %08x", c.Disk, s.mo.Name, leafName, leaf.ParentCID, parent.CID)
	}
	extName := path.Join(path.Dir(leafName), leaf.Extents[0].File)
	if err := h.checkEmpty(ctx, s, extName); err != nil {
		return File{}, File{}, fmt.Errorf("disk %d: %w", c.Disk, err)
	}
	desc, ext, err := leafFill(ctx, leafName, leaf, parent, c)
	if err != nil {
		return File{}, File{}, fmt.Errorf("esx: VM %s disk %d: %w", s.mo.Name, c.Disk, err)
	}
	return desc, ext, nil
}

// checkEmpty tells a vmfsSparse leaf extent that holds no data from one
// someone wrote to.
func (h *Host) checkEmpty(ctx context.Context, s *vmState, extName string) error {
	b, err := h.readRange(ctx, s.ds, path.Join(s.dir, extName), 0, maxEmptyLeaf+1)
	if err != nil {
		return err
	}
	if len(b) > maxEmptyLeaf {
		return fmt.Errorf("%w: %s of VM %s is larger than an empty delta", bootpoint.ErrDiverged, extName, s.mo.Name)
	}
	c, err := vmdk.OpenCOWD(&memRW{b: b}, int64(len(b)))
	if err != nil {
		return fmt.Errorf("esx: %s of VM %s: %w", extName, s.mo.Name, err)
	}
	if a := c.Allocated(); len(a) > 0 {
		return fmt.Errorf("%w: %s of VM %s holds data at [%d,%d)", bootpoint.ErrDiverged, extName, s.mo.Name, a[0].Off, a[0].End())
	}
	return nil
}

// memRW is a byte slice read and written at offsets.
type memRW struct{ b []byte }

func (m *memRW) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memRW) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}
