package bootpoint

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/standbykit/standbykit/vmdk"
)

// VMDK is the DiskFormat of ESXi: the base disk as a streamOptimized VMDK
// (imported), every later boot point as a vmfsSparse delta on top of the
// current leaf.
type VMDK struct {
	// AdapterType is the base descriptor's ddb.adapterType; empty means
	// "lsilogic", what ESXi writes for every SCSI controller.
	AdapterType string
	// Workers compress the base disk's grains; 0 means GOMAXPROCS.
	Workers int
	// TempDir holds chains downloaded for verification; empty means the
	// system's temporary folder.
	TempDir string
}

var _ DiskFormat = VMDK{}

// Grain is a sector: vmfsSparse deltas hold any sector-aligned range.
func (VMDK) Grain() int64 { return vmdk.SectorSize }

func ranges(d Delta) []vmdk.Range {
	out := make([]vmdk.Range, len(d.Extents))
	for i, e := range d.Extents {
		out[i] = vmdk.Range{Off: e.Off, Len: e.Len}
	}
	return out
}

// Base streams disk d of a new VM as streamOptimized. Its size is not known
// before it is written (Size -1).
func (f VMDK) Base(ctx context.Context, vmName string, d Delta) (File, error) {
	name := vmdk.DiskName(vmName, d.Disk)
	opts := vmdk.StreamOptions{ExtentName: name, AdapterType: f.AdapterType, Workers: f.Workers, Data: ranges(d)}
	if d.Size%vmdk.SectorSize != 0 {
		return File{}, fmt.Errorf("bootpoint: disk %d size %d is not a multiple of 512", d.Disk, d.Size)
	}
	return File{Name: name, Size: -1, Open: func() (io.ReadCloser, error) {
		return pipe(func(w io.Writer) error {
			_, err := vmdk.WriteStreamOptimized(ctx, w, d.Source, d.Size, opts)
			return err
		}), nil
	}}, nil
}

// Delta writes a vmfsSparse delta on top of the parent: its extent streams
// from the delta's source when opened.
func (f VMDK) Delta(ctx context.Context, parentName string, parentDescriptor []byte, d Delta) (DiskDelta, error) {
	parent, err := parseParent(parentName, parentDescriptor)
	if err != nil {
		return DiskDelta{}, err
	}
	if parent.Capacity() != d.Size {
		return DiskDelta{}, fmt.Errorf("bootpoint: parent %s holds %d bytes, disk %d has %d", parentName, parent.Capacity(), d.Disk, d.Size)
	}
	nd, err := vmdk.NewDelta(parentName, parent, ranges(d))
	if err != nil {
		return DiskDelta{}, err
	}
	return deltaFiles(ctx, d.Disk, nd, d.Source), nil
}

// EmptyChild returns an empty delta on top of the parent: a scratch leaf
// that lets a boot point be powered on without changing its chain.
func (f VMDK) EmptyChild(ctx context.Context, parentName string, parentDescriptor []byte) (DiskDelta, error) {
	parent, err := parseParent(parentName, parentDescriptor)
	if err != nil {
		return DiskDelta{}, err
	}
	nd, err := vmdk.NewDelta(parentName, parent, nil)
	if err != nil {
		return DiskDelta{}, err
	}
	return deltaFiles(ctx, 0, nd, bytes.NewReader(nil)), nil
}

func parseParent(name string, b []byte) (*vmdk.Descriptor, error) {
	text, err := vmdk.EmbeddedDescriptor(b)
	if err != nil {
		return nil, fmt.Errorf("bootpoint: descriptor of %s: %w", name, err)
	}
	desc, err := vmdk.ParseDescriptor(text)
	if err != nil {
		return nil, fmt.Errorf("bootpoint: descriptor of %s: %w", name, err)
	}
	return desc, nil
}

func deltaFiles(ctx context.Context, disk int, nd *vmdk.Delta, src io.ReaderAt) DiskDelta {
	text := nd.DescriptorText()
	return DiskDelta{
		Disk: disk,
		Descriptor: File{Name: nd.DescriptorName, Size: int64(len(text)), Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(text)), nil
		}},
		Extent: File{Name: nd.ExtentName, Size: nd.ExtentSize, Open: func() (io.ReadCloser, error) {
			return pipe(func(w io.Writer) error {
				_, err := nd.WriteExtent(ctx, w, src, nil)
				return err
			}), nil
		}},
	}
}

// pipe runs write in a goroutine and returns what it writes; closing the
// reader early stops the writer.
func pipe(write func(io.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	return pr
}

// OpenChain downloads the chain's files into a temporary folder and reads
// the leaf (files[0]) with vmdk.OpenChain. Closing removes the folder.
func (f VMDK) OpenChain(ctx context.Context, files []RemoteFile, size int64) (io.ReaderAt, io.Closer, error) {
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("bootpoint: empty disk chain")
	}
	dir, err := os.MkdirTemp(f.TempDir, "standbykit-chain-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	for _, rf := range files {
		if err := download(ctx, dir, rf); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	chain, err := vmdk.OpenChain(os.DirFS(dir), path.Clean(files[0].Name))
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	if chain.Size() != size {
		chain.Close()
		cleanup()
		return nil, nil, fmt.Errorf("bootpoint: chain of %s holds %d bytes, expected %d", files[0].Name, chain.Size(), size)
	}
	return chain, closerFunc(func() error {
		err := chain.Close()
		cleanup()
		return err
	}), nil
}

func download(ctx context.Context, dir string, rf RemoteFile) error {
	name := path.Clean(rf.Name)
	if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("bootpoint: chain file name %q leaves its folder", rf.Name)
	}
	rc, err := rf.Open(ctx)
	if err != nil {
		return fmt.Errorf("bootpoint: downloading %s: %w", rf.Name, err)
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
		return fmt.Errorf("bootpoint: downloading %s: %w", rf.Name, err)
	}
	return out.Close()
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }
