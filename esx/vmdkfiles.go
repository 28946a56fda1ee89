package esx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/internal/extent"
	"github.com/standbykit/standbykit/vmdk"
)

// The VMDK files this package makes and reads, all through package vmdk:
// a streamOptimized stream per base disk (NFC import), a vmfsSparse
// extent and descriptor that fill ESXi's empty redo log with a boot
// point's changes, an empty child for test clones, and disk chains read
// back for verification.

// File is content to place on a datastore. Open may be called more than
// once (a retry re-reads from the start).
type File struct {
	Name string
	Size int64 // -1 when unknown (a stream produced on the fly)
	Open func() (io.ReadCloser, error)
}

// memFile is a File of fixed bytes.
func memFile(name string, b []byte) File {
	return File{Name: name, Size: int64(len(b)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

// ranges turns a Delta's extents into vmdk ranges, widened to whole
// sectors and clipped to the disk.
func ranges(d bootpoint.Delta) ([]vmdk.Range, error) {
	if d.Size <= 0 || d.Size%vmdk.SectorSize != 0 {
		return nil, fmt.Errorf("esx: disk %d size %d is not a positive multiple of %d", d.Disk, d.Size, vmdk.SectorSize)
	}
	var set extent.Set
	for _, e := range d.Extents {
		if e.Off < 0 || e.Len < 0 || e.Off+e.Len > d.Size {
			return nil, fmt.Errorf("esx: disk %d: extent [%d,%d) outside its %d bytes", d.Disk, e.Off, e.Off+e.Len, d.Size)
		}
		set.Add(e.Off, e.Len)
	}
	return set.AlignOut(vmdk.SectorSize).Clip(0, d.Size).Extents(), nil
}

// baseStream is disk d of a new VM as a streamOptimized stream (size
// unknown until written).
func (h *Host) baseStream(ctx context.Context, vmName string, d bootpoint.Delta) (File, error) {
	rs, err := ranges(d)
	if err != nil {
		return File{}, err
	}
	name := vmdk.DiskName(vmName, d.Disk)
	opts := vmdk.StreamOptions{ExtentName: name, AdapterType: h.AdapterType, Workers: h.Workers, Data: rs,
		Progress: bootpoint.Progress(ctx, bootpoint.StepStream, d.Disk)}
	return File{Name: name, Size: -1, Open: func() (io.ReadCloser, error) {
		return pipe(func(w io.Writer) error {
			_, err := vmdk.WriteStreamOptimized(ctx, w, d.Source, d.Size, opts)
			return err
		}), nil
	}}, nil
}

// leafFill is the content of an empty vmfsSparse leaf filled with a
// boot point's changes: the same descriptor (parent, parentCID, file
// names) with a new CID, and a new extent holding the changed sectors.
func leafFill(ctx context.Context, leafName string, leaf *vmdk.Descriptor, parent *vmdk.Descriptor, d bootpoint.Delta) (descriptor, extentFile File, err error) {
	if len(leaf.Extents) != 1 || leaf.Extents[0].Type != vmdk.ExtentVMFSSparse {
		return File{}, File{}, fmt.Errorf("%w: leaf %s is %s, not one vmfsSparse extent", ErrLeafFormat, leafName, leaf.CreateType)
	}
	if leaf.Capacity() != d.Size || parent.Capacity() != d.Size {
		return File{}, File{}, fmt.Errorf("esx: leaf %s holds %d bytes, disk %d has %d", leafName, leaf.Capacity(), d.Disk, d.Size)
	}
	rs, err := ranges(d)
	if err != nil {
		return File{}, File{}, err
	}
	nd, err := vmdk.NewDelta(leaf.ParentFileNameHint, parent, rs)
	if err != nil {
		return File{}, File{}, err
	}
	desc := *leaf
	desc.DDB = slices.Clone(leaf.DDB)
	desc.SetCID(vmdk.NewCID())
	text, err := desc.MarshalText()
	if err != nil {
		return File{}, File{}, err
	}
	ext := leaf.Extents[0].File
	return memFile(leafName, text), File{Name: path.Join(path.Dir(leafName), ext), Size: nd.ExtentSize, Open: func() (io.ReadCloser, error) {
		return pipe(func(w io.Writer) error {
			_, err := nd.WriteExtent(ctx, w, d.Source, bootpoint.Progress(ctx, bootpoint.StepUpload, d.Disk))
			return err
		}), nil
	}}, nil
}

// emptyChild is an empty vmfsSparse delta on top of the parent (its name
// as the child will refer to it): a scratch leaf that lets a boot point be
// powered on without changing its chain.
func emptyChild(ctx context.Context, parentName string, parent *vmdk.Descriptor) (descriptor, extentFile File, err error) {
	nd, err := vmdk.NewDelta(parentName, parent, nil)
	if err != nil {
		return File{}, File{}, err
	}
	nd.DescriptorName, nd.ExtentName = path.Base(nd.DescriptorName), path.Base(nd.ExtentName)
	var ext bytes.Buffer
	if _, err := nd.WriteExtent(ctx, &ext, bytes.NewReader(nil), nil); err != nil {
		return File{}, File{}, err
	}
	return memFile(nd.DescriptorName, nd.DescriptorText()), memFile(nd.ExtentName, ext.Bytes()), nil
}

// pipe runs write in a goroutine and returns what it writes; closing the
// reader early stops the writer.
func pipe(write func(io.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	return pr
}

// remoteFile is a file of a disk chain on the datastore, named relative
// to the VM's folder.
type remoteFile struct {
	Name string
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// chainDisk is a disk chain downloaded into a temporary folder and read
// with vmdk.OpenChain: a bootpoint.Disk. Close removes the folder.
type chainDisk struct {
	*vmdk.Chain
	dir string
}

func (c *chainDisk) Close() error {
	err := c.Chain.Close()
	return errors.Join(err, os.RemoveAll(c.dir))
}

// openChain downloads the chain's files (leaf descriptor first) and opens
// the leaf.
func (h *Host) openChain(ctx context.Context, files []remoteFile) (*chainDisk, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("esx: empty disk chain")
	}
	dir, err := os.MkdirTemp(h.TempDir, "standbykit-chain-")
	if err != nil {
		return nil, err
	}
	for _, rf := range files {
		if err := download(ctx, dir, rf); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	chain, err := vmdk.OpenChain(os.DirFS(dir), path.Clean(files[0].Name))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("esx: disk chain of %s: %w", files[0].Name, err)
	}
	return &chainDisk{Chain: chain, dir: dir}, nil
}

func download(ctx context.Context, dir string, rf remoteFile) error {
	name := path.Clean(rf.Name)
	if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("esx: chain file name %q leaves its folder", rf.Name)
	}
	rc, err := rf.Open(ctx)
	if err != nil {
		return fmt.Errorf("esx: downloading %s: %w", rf.Name, err)
	}
	defer rc.Close()
	dst := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return fmt.Errorf("esx: downloading %s: %w", rf.Name, err)
	}
	return out.Close()
}
