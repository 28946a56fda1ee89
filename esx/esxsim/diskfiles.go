package esxsim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/object"

	"github.com/standbykit/standbykit/vmdk"
)

// The disk files of the simulated host: every disk is a text descriptor
// with one extent, a vmfs base (name-flat.vmdk, sparse on the local file
// system) or a vmfsSparse delta (name-00000N-delta.vmdk) that grows grain
// by grain when written, as ESXi keeps them on VMFS5 and NFS datastores.

// localPath maps a datastore path ("[datastore1] vm/vm.vmdk") to the file
// in the simulator's folder.
func (s *Simulator) localPath(dsPath string) (string, error) {
	var p object.DatastorePath
	if !p.FromString(dsPath) || p.Datastore != Datastore {
		return "", fmt.Errorf("esxsim: %q is not a path on %s", dsPath, Datastore)
	}
	rel := path.Clean(p.Path)
	if path.IsAbs(rel) || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("esxsim: %q leaves the datastore", dsPath)
	}
	return filepath.Join(s.Dir, filepath.FromSlash(rel)), nil
}

// datastorePath is the inverse of localPath.
func (s *Simulator) datastorePath(local string) (string, error) {
	rel, err := filepath.Rel(s.Dir, local)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("esxsim: %s is outside the datastore", local)
	}
	p := object.DatastorePath{Datastore: Datastore, Path: filepath.ToSlash(rel)}
	return p.String(), nil
}

// readDescriptor reads a text descriptor with exactly one extent.
func readDescriptor(p string) (*vmdk.Descriptor, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	d, err := vmdk.ParseDescriptor(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(d.Extents) != 1 {
		return nil, fmt.Errorf("%s: %d extents; the simulator keeps one per disk", p, len(d.Extents))
	}
	return d, nil
}

// writeDescriptor replaces a descriptor file atomically.
func writeDescriptor(p string, d *vmdk.Descriptor) error {
	b, err := d.MarshalText()
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// extentPath is the file of a descriptor's (only) extent.
func extentPath(desc string, d *vmdk.Descriptor) string {
	return filepath.Join(filepath.Dir(desc), filepath.FromSlash(path.Clean(d.Extents[0].File)))
}

// newChild creates an empty child of the disk whose descriptor is parent,
// in the same folder, under the next free ESXi delta name (vm-000001.vmdk,
// vm-000002.vmdk…), and returns its descriptor's path. Under 2 TiB the
// child is vmfsSparse, as ESXi makes it on VMFS5 and NFS; from 2 TiB on,
// where ESXi uses SEsparse (whose format is not public), it is a hosted
// sparse extent: another format than vmfsSparse, as on a real host, that
// only the writer appliance can fill.
func newChild(parent string) (string, error) {
	pd, err := readDescriptor(parent)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(parent)
	name, ext := vmdk.NextDeltaName(baseDiskName(filepath.Base(parent)))
	for exists(filepath.Join(dir, name)) || exists(filepath.Join(dir, ext)) {
		name, ext = vmdk.NextDeltaName(name)
	}
	var desc *vmdk.Descriptor
	var create func(f *os.File) error
	if pd.Capacity() < vmfsSparseLimit {
		d, err := vmdk.NewDelta(filepath.Base(parent), pd, nil)
		if err != nil {
			return "", err
		}
		d.Descriptor.Extents[0].File = ext
		desc = d.Descriptor
		create = func(f *os.File) error {
			_, err := d.WriteExtent(context.Background(), f, nil, nil)
			return err
		}
	} else {
		if desc, err = vmdk.NewSparseChild(filepath.Base(parent), pd, ext); err != nil {
			return "", err
		}
		create = func(f *os.File) error {
			_, err := vmdk.CreateSparse(f, pd.Capacity())
			return err
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, ext), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	if err := create(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := writeDescriptor(filepath.Join(dir, name), desc); err != nil {
		os.Remove(filepath.Join(dir, ext))
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// vmfsSparseLimit is the capacity from which ESXi's deltas are not
// vmfsSparse.
const vmfsSparseLimit = 2 << 40

// baseDiskName strips a delta number: vm-000003.vmdk → vm.vmdk, so that
// every delta of a disk is numbered after its base, as ESXi names them.
func baseDiskName(name string) string {
	stem := strings.TrimSuffix(name, ".vmdk")
	if i := strings.LastIndexByte(stem, '-'); i >= 0 && len(stem)-i-1 == 6 && strings.Trim(stem[i+1:], "0123456789") == "" {
		stem = stem[:i]
	}
	return stem + ".vmdk"
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, fs.ErrNotExist)
}

// deleteDisk removes a descriptor and its extent. A descriptor that no
// longer parses (an upload broke while replacing it) goes with the extent
// ESXi's naming gives it.
func deleteDisk(desc string) error {
	d, err := readDescriptor(desc)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		ext := strings.TrimSuffix(desc, ".vmdk") + "-delta.vmdk"
		if rerr := os.Remove(ext); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return rerr
		}
		return os.Remove(desc)
	}
	return errors.Join(os.Remove(extentPath(desc, d)), os.Remove(desc))
}

// diskWriter opens the extent of a disk for writing: a flat file as is, a
// vmfsSparse extent through vmdk.COWDFile. close must be called.
func diskWriter(desc string) (w interface {
	WriteAt([]byte, int64) (int, error)
}, d *vmdk.Descriptor, close func() error, err error) {
	d, err = readDescriptor(desc)
	if err != nil {
		return nil, nil, nil, err
	}
	f, err := os.OpenFile(extentPath(desc, d), os.O_RDWR, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	switch d.Extents[0].Type {
	case vmdk.ExtentVMFS, vmdk.ExtentFlat:
		return f, d, f.Close, nil
	case vmdk.ExtentSparse:
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, nil, err
		}
		sp, err := vmdk.OpenSparse(f, st.Size())
		if err != nil {
			f.Close()
			return nil, nil, nil, fmt.Errorf("%s: %w", desc, err)
		}
		// A write into part of a 64 KiB grain keeps the rest of the
		// grain's content, read through the parent chain.
		var parent *vmdk.Chain
		if d.ParentFileNameHint != "" {
			if parent, err = vmdk.OpenChain(os.DirFS(filepath.Dir(desc)), d.ParentFileNameHint); err != nil {
				f.Close()
				return nil, nil, nil, fmt.Errorf("%s: its parent: %w", desc, err)
			}
			sp.SetBacking(parent)
		}
		return sp, d, func() error {
			var perr error
			if parent != nil {
				perr = parent.Close()
			}
			return errors.Join(f.Close(), perr)
		}, nil
	case vmdk.ExtentVMFSSparse:
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, nil, err
		}
		c, err := vmdk.OpenCOWD(f, st.Size())
		if err != nil {
			f.Close()
			return nil, nil, nil, fmt.Errorf("%s: %w", desc, err)
		}
		return c, d, f.Close, nil
	}
	f.Close()
	return nil, nil, nil, fmt.Errorf("esxsim: %s: cannot write a %s extent", desc, d.Extents[0].Type)
}

// writeLeaf writes p at off into the disk whose descriptor is desc (a
// chain's leaf) and gives it a new CID, as ESXi does on the first write
// after a disk is opened.
func writeLeaf(desc string, off int64, p []byte) error {
	w, d, closeFn, err := diskWriter(desc)
	if err != nil {
		return err
	}
	_, err = w.WriteAt(p, off)
	if cerr := closeFn(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("esxsim: writing %s at %d: %w", desc, off, err)
	}
	d.SetCID(vmdk.NewCID())
	return writeDescriptor(desc, d)
}

// mergeChild consolidates the disk child into its parent, both text
// descriptors of one folder: every sector the child holds is written into
// the parent, which then takes the child's CID (it now has the child's
// content, so the child's own children stay valid once they name it).
// The child's files are left for the caller to delete.
func mergeChild(child, parent string) error {
	chain, err := vmdk.OpenChain(os.DirFS(filepath.Dir(child)), filepath.Base(child))
	if err != nil {
		return err
	}
	defer chain.Close()
	links := chain.Links()
	if len(links) < 2 || links[1].Name != filepath.Base(parent) {
		return fmt.Errorf("esxsim: %s is not the parent of %s", parent, child)
	}
	own, err := chain.Allocated(0)
	if err != nil {
		return err
	}
	w, pd, closeFn, err := diskWriter(parent)
	if err != nil {
		return err
	}
	err = copyRanges(w, chain, own, false)
	if cerr := closeFn(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("esxsim: merging %s into %s: %w", child, parent, err)
	}
	pd.SetCID(links[0].Descriptor.CID)
	return writeDescriptor(parent, pd)
}

// renameParentHints points the descriptors of dir whose parent is oldName
// at newName.
func renameParentHints(dir, oldName, newName string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".vmdk") || strings.HasSuffix(e.Name(), "-delta.vmdk") || strings.HasSuffix(e.Name(), "-flat.vmdk") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		d, err := readDescriptor(p)
		if err != nil {
			continue // not a descriptor of ours
		}
		if d.ParentFileNameHint == oldName {
			d.ParentFileNameHint = newName
			if err := writeDescriptor(p, d); err != nil {
				return err
			}
		}
	}
	return nil
}
