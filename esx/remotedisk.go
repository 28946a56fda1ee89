package esx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/internal/hosttext"
	"github.com/standbykit/standbykit/vmdk"
)

// A boot point's disk is read where the reader asks, with ranged
// downloads, rather than by copying its whole chain first: reading back
// what a boot point wrote then costs about what was written (plus the
// descriptors and the grain tables on the way), not the disk's size.

// rangedBlock is the unit small reads are fetched and cached in: grain
// tables and the 512-byte grains of a vmfsSparse delta sit together.
const (
	rangedBlock       = 64 << 10
	rangedCacheBlocks = 64 // per file: 4 MiB
)

// openRangedChain opens the chain whose leaf descriptor is files[0] on
// ranged reads of the VM folder's files. It fails, and the caller falls
// back to downloading, when the folder's file sizes cannot be listed.
func (h *Host) openRangedChain(ctx context.Context, s *vmState, rd RangeDownloader, files []remoteFile) (*vmdk.Chain, error) {
	sizes, err := h.folderSizes(ctx, s)
	if err != nil {
		return nil, err
	}
	fsys := &rangedFS{ctx: ctx, rd: rd, ds: s.ds, dir: s.dir, sizes: map[string]int64{}}
	for _, f := range files {
		name := path.Clean(f.Name)
		size, ok := sizes[name]
		if !ok {
			return nil, fmt.Errorf("esx: %s is not listed in the VM's folder", ds(s, name))
		}
		fsys.sizes[name] = size
	}
	chain, err := vmdk.OpenChain(fsys, path.Clean(files[0].Name))
	if err != nil {
		return nil, fmt.Errorf("esx: disk chain of %s: %w", files[0].Name, err)
	}
	return chain, nil
}

func ds(s *vmState, name string) string { return s.ds.Path(path.Join(s.dir, name)) }

// folderSizes lists the sizes of the files in the VM's folder, by name.
func (h *Host) folderSizes(ctx context.Context, s *vmState) (map[string]int64, error) {
	b, err := s.ds.Browser(ctx)
	if err != nil {
		return nil, err
	}
	task, err := b.SearchDatastore(ctx, s.ds.Path(s.dir), &types.HostDatastoreBrowserSearchSpec{
		MatchPattern: []string{"*"},
		Details:      &types.FileQueryFlags{FileSize: true, FileType: true},
	})
	if err != nil {
		return nil, fmt.Errorf("esx: listing %s: %w", s.ds.Path(s.dir), err)
	}
	info, err := taskResult(ctx, task)
	if err != nil {
		return nil, fmt.Errorf("esx: listing %s: %w", s.ds.Path(s.dir), err)
	}
	res, ok := info.Result.(types.HostDatastoreBrowserSearchResults)
	if !ok {
		return nil, fmt.Errorf("esx: listing %s: unexpected result %T", s.ds.Path(s.dir), info.Result)
	}
	return listedSizes(s.ds.Path(s.dir), res.File)
}

// maxFolderFiles bounds the files of one VM folder: a standby at its
// deepest holds a few hundred (descriptors, extents and snapshot files of
// every disk at every boot point).
const maxFolderFiles = 16384

// listedSizes checks a folder listing from the host and returns its
// files' sizes by name.
func listedSizes(folder string, files []types.BaseFileInfo) (map[string]int64, error) {
	if len(files) > maxFolderFiles {
		return nil, fmt.Errorf("%w: %s lists %d files, more than %d", ErrImplausible, folder, len(files), maxFolderFiles)
	}
	sizes := make(map[string]int64, len(files))
	for _, f := range files {
		fi := f.GetFileInfo()
		name := path.Clean(fi.Path)
		if fi.FileSize < 0 || name == "." || strings.Contains(name, "/") {
			return nil, fmt.Errorf("%w: %s lists %q of %d bytes", ErrImplausible, folder, hosttext.Clip(fi.Path, 256), fi.FileSize)
		}
		sizes[name] = fi.FileSize
	}
	return sizes, nil
}

// rangedFS is a VM folder's files, read with ranged downloads.
type rangedFS struct {
	ctx   context.Context
	rd    RangeDownloader
	ds    *object.Datastore
	dir   string
	sizes map[string]int64
}

func (f *rangedFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) || strings.HasPrefix(name, "../") {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	size, ok := f.sizes[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &rangedFile{fs: f, name: name, size: size, blocks: map[int64][]byte{}}, nil
}

// rangedFile reads one file: large reads straight from the host, small
// ones through a few cached blocks.
type rangedFile struct {
	fs   *rangedFS
	name string
	size int64

	mu     sync.Mutex
	blocks map[int64][]byte
	order  []int64 // cached blocks, oldest first
	pos    int64   // for Read
}

var _ io.ReaderAt = (*rangedFile)(nil)

func (f *rangedFile) Stat() (fs.FileInfo, error) { return rangedInfo{f}, nil }
func (f *rangedFile) Close() error               { return nil }

func (f *rangedFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	pos := f.pos
	f.mu.Unlock()
	n, err := f.ReadAt(p, pos)
	f.mu.Lock()
	f.pos += int64(n)
	f.mu.Unlock()
	return n, err
}

func (f *rangedFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(len(p)), f.size-off)]
	var err error
	if len(p) >= 4*rangedBlock {
		err = f.fetch(p, off)
	} else {
		err = f.cached(p, off)
	}
	if err != nil {
		return 0, err
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// cached serves a small read from whole blocks, fetching those missing.
func (f *rangedFile) cached(p []byte, off int64) error {
	for n := 0; n < len(p); {
		pos := off + int64(n)
		b := pos / rangedBlock
		f.mu.Lock()
		data, ok := f.blocks[b]
		f.mu.Unlock()
		if !ok {
			start := b * rangedBlock
			data = make([]byte, min(rangedBlock, f.size-start))
			if err := f.fetch(data, start); err != nil {
				return err
			}
			f.mu.Lock()
			if _, again := f.blocks[b]; !again {
				f.blocks[b] = data
				f.order = append(f.order, b)
				if len(f.order) > rangedCacheBlocks {
					delete(f.blocks, f.order[0])
					f.order = f.order[1:]
				}
			}
			f.mu.Unlock()
		}
		n += copy(p[n:], data[pos-b*rangedBlock:])
	}
	return nil
}

// fetch downloads exactly len(p) bytes at off.
func (f *rangedFile) fetch(p []byte, off int64) error {
	full := path.Join(f.fs.dir, f.name)
	r, err := f.fs.rd.DownloadRange(f.fs.ctx, f.fs.ds, full, off, int64(len(p)))
	if err != nil {
		return fmt.Errorf("esx: reading %s at %d: %w", f.fs.ds.Path(full), off, err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("esx: reading %s at %d: %w", f.fs.ds.Path(full), off, err)
	}
	return nil
}

type rangedInfo struct{ f *rangedFile }

func (i rangedInfo) Name() string       { return path.Base(i.f.name) }
func (i rangedInfo) Size() int64        { return i.f.size }
func (i rangedInfo) Mode() fs.FileMode  { return 0o444 }
func (i rangedInfo) ModTime() time.Time { return time.Time{} }
func (i rangedInfo) IsDir() bool        { return false }
func (i rangedInfo) Sys() any           { return nil }
