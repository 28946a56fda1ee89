package aipimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/standbykit/standbykit/internal/extent"
)

// FileExt is the extension OpenDir looks for.
const FileExt = ".skimg"

// Extent is a byte range [Off, Off+Len) of a disk: a struct of two int64
// fields, Off and Len, with a method End returning Off+Len. Write it as
// aipimage.Extent{Off: 4096, Len: 512}.
//
// It is an alias of the one extent type shared by every StandbyKit
// package, so the ranges a Point reports pass unchanged to the code that
// writes disks.
type Extent = extent.Extent

// Set is the chain of backup points of one machine, oldest first. It is
// what the rest of StandbyKit consumes; ImageSet implements it for this
// package's format, and an embedding product may implement it for its own.
type Set interface {
	// Points lists the usable points in chain order: the full image first.
	Points() []PointInfo
	// Point opens point k (an index into Points).
	Point(k int) (Point, error)
}

// Point is a machine's disks as they were at one backup point.
type Point interface {
	Info() PointInfo
	// Disk returns the full content of disk d at this point; its Size is
	// the disk's size. It is safe for concurrent use.
	Disk(d int) (*io.SectionReader, error)
	// Changed returns the sorted, disjoint byte ranges of disk d that
	// this point changed relative to its parent; for the first point, the
	// ranges that hold data. Bytes outside them equal the parent's.
	Changed(d int) ([]Extent, error)
}

// Pending is a file that is not usable yet: still being copied, or waiting
// for a parent that is.
type Pending struct {
	File   string
	Reason error // matches ErrIncomplete
}

// ImageSet is an opened chain of image files.
type ImageSet struct {
	chain   []*File
	pending []Pending
	workers int
}

var (
	_ Set   = (*ImageSet)(nil)
	_ Point = (*ImagePoint)(nil)
)

// OpenDir opens the image files (*.skimg) in dir as one set. See
// OpenFiles.
func OpenDir(dir string, opts *OpenOptions) (*ImageSet, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*"+FileExt))
	if err != nil {
		return nil, err
	}
	return OpenFiles(names, opts)
}

// OpenFiles opens the given image files as one set and validates their
// chain. Files still being written (ErrIncomplete), and complete files
// that hang off them, are listed by Pending rather than failing the open;
// the usable points are the chain up to them. Any other problem fails with
// a *FileError or a *ChainError naming the file.
func OpenFiles(paths []string, opts *OpenOptions) (*ImageSet, error) {
	if opts == nil {
		opts = &OpenOptions{}
	}
	opts.keyring() // share one keyring so a set's key is derived once
	s := &ImageSet{workers: opts.ReadWorkers}
	if s.workers <= 0 {
		s.workers = runtime.GOMAXPROCS(0)
	}
	var files []*File
	fail := func(err error) (*ImageSet, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	var kdf *Encryption // the first encrypted file's key derivation
	var kdfFile string
	for _, p := range paths {
		f, err := openFile(p)
		if errors.Is(err, ErrIncomplete) {
			s.pending = append(s.pending, Pending{File: p, Reason: err})
			continue
		}
		if err != nil {
			return fail(err)
		}
		files = append(files, f)
		// The files of a set share their key derivation, so that opening
		// it costs one scrypt run: files that each name their own would
		// make a folder of small files cost seconds and 256 MiB apiece.
		if e := f.info.Encryption; e != nil {
			if kdf == nil {
				kdf, kdfFile = e, p
			} else if !sameKDF(kdf, e) {
				return fail(&ChainError{ErrWrongSet, p, "key derivation parameters (salt, n, r, p) differ from those of " + kdfFile})
			}
		}
		if err := f.unlock(opts); err != nil {
			return fail(&FileError{File: p, Err: err})
		}
	}
	chain, waiting, err := linkChain(files, len(s.pending) > 0)
	if err != nil {
		return fail(err)
	}
	s.chain = chain
	for _, f := range waiting {
		s.pending = append(s.pending, Pending{File: f.info.File,
			Reason: incompletef("parent %s not available yet", f.info.ParentID)})
		f.Close()
	}
	return s, nil
}

func sameKDF(a, b *Encryption) bool {
	return a.KDF == b.KDF && bytes.Equal(a.Salt, b.Salt) && a.N == b.N && a.R == b.R && a.P == b.P
}

// linkChain orders files from the full image along parent links. Files
// whose parent is absent are returned as waiting when some file is still
// incomplete (it may be that parent), and are an error otherwise.
func linkChain(files []*File, someIncomplete bool) (chain, waiting []*File, err error) {
	var root *File
	byID := map[string]*File{}
	children := map[string][]*File{}
	for _, f := range files {
		in := &f.info
		if prev, dup := byID[in.PointID]; dup {
			return nil, nil, &ChainError{ErrForkedChain, in.File, "same point as " + prev.info.File}
		}
		byID[in.PointID] = f
		if in.Full() {
			if root != nil {
				err := ErrForkedChain
				if root.info.SetID != in.SetID {
					err = ErrWrongSet
				}
				return nil, nil, &ChainError{err, in.File, "second full image beside " + root.info.File}
			}
			root = f
			continue
		}
		children[in.ParentID] = append(children[in.ParentID], f)
	}
	if root == nil {
		if len(files) == 0 && !someIncomplete {
			return nil, nil, &ChainError{ErrNoFullImage, "", "no image files"}
		}
		if someIncomplete {
			return nil, files, nil
		}
		return nil, nil, &ChainError{ErrNoFullImage, files[0].info.File, "no full image among the files"}
	}
	for _, f := range files {
		if f.info.SetID != root.info.SetID {
			return nil, nil, &ChainError{ErrWrongSet, f.info.File,
				fmt.Sprintf("set %s, the full image %s is of set %s", f.info.SetID, root.info.File, root.info.SetID)}
		}
	}
	for cur := root; cur != nil; {
		chain = append(chain, cur)
		kids := children[cur.info.PointID]
		delete(children, cur.info.PointID)
		switch len(kids) {
		case 0:
			cur = nil
			continue
		case 1:
		default:
			return nil, nil, &ChainError{ErrForkedChain, kids[1].info.File,
				fmt.Sprintf("%s and %s both follow %s", kids[0].info.File, kids[1].info.File, cur.info.File)}
		}
		next := kids[0]
		if next.info.Sequence != cur.info.Sequence+1 {
			return nil, nil, &ChainError{ErrSequenceGap, next.info.File,
				fmt.Sprintf("sequence %d follows %d in %s", next.info.Sequence, cur.info.Sequence, cur.info.File)}
		}
		if !sameDisks(next.info.Disks, cur.info.Disks) || next.info.BlockSize != cur.info.BlockSize {
			return nil, nil, &ChainError{ErrDiskMismatch, next.info.File, "disks or block size differ from " + cur.info.File}
		}
		cur = next
	}
	for _, kids := range children {
		waiting = append(waiting, kids...)
	}
	if len(waiting) == 0 {
		return chain, nil, nil
	}
	sort.Slice(waiting, func(i, j int) bool { return waiting[i].info.Sequence < waiting[j].info.Sequence })
	if !someIncomplete {
		f := waiting[0]
		return nil, nil, &ChainError{ErrMissingParent, f.info.File,
			fmt.Sprintf("parent %s (sequence %d) is not in the set", f.info.ParentID, f.info.Sequence-1)}
	}
	return chain, waiting, nil
}

func sameDisks(a, b []DiskInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Size != b[i].Size || a[i].SectorSize != b[i].SectorSize {
			return false
		}
	}
	return true
}

// Points lists the usable points, full image first.
func (s *ImageSet) Points() []PointInfo {
	out := make([]PointInfo, len(s.chain))
	for i, f := range s.chain {
		out[i] = f.info
	}
	return out
}

// Pending lists the files not usable yet.
func (s *ImageSet) Pending() []Pending { return append([]Pending(nil), s.pending...) }

// IndexOf returns the index in Points of the point read from file, for a
// caller that names points by their files (a --parent flag). Paths are
// compared as files, not as strings: a relative path or a link to a file
// of the set is found. A file that is pending, or not one of the set's
// files at all, fails with a *ChainError matching ErrNotInSet.
func (s *ImageSet) IndexOf(file string) (int, error) {
	st, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, &ChainError{ErrNotInSet, file, "no such file"}
	}
	if err != nil {
		return -1, &ChainError{ErrNotInSet, file, err.Error()}
	}
	for k, f := range s.chain {
		if fst, err := os.Stat(f.info.File); err == nil && os.SameFile(st, fst) {
			return k, nil
		}
	}
	for _, p := range s.pending {
		if pst, err := os.Stat(p.File); err == nil && os.SameFile(st, pst) {
			return -1, &ChainError{ErrNotInSet, file, fmt.Sprintf("pending, not usable yet (%v)", p.Reason)}
		}
	}
	return -1, &ChainError{ErrNotInSet, file, "not one of the set's files"}
}

// File returns the image file of point k.
func (s *ImageSet) File(k int) *File { return s.chain[k] }

// Point opens point k: reads see the newest version of every block among
// the files 0..k.
func (s *ImageSet) Point(k int) (Point, error) {
	if k < 0 || k >= len(s.chain) {
		return nil, invalidf("point %d of %d", k, len(s.chain))
	}
	return &ImagePoint{layers: s.chain[:k+1], workers: s.workers}, nil
}

// Verify checks every file of the set completely (see File.Verify).
func (s *ImageSet) Verify(ctx context.Context, progress func(VerifyProgress)) error {
	for _, f := range s.chain {
		if err := f.Verify(ctx, progress); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every file.
func (s *ImageSet) Close() error {
	var errs []error
	for _, f := range s.chain {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// FileName suggests a file name for a point: host, set and sequence, so
// that a directory listing sorts a set's files in chain order.
func FileName(info PointInfo) string {
	host := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, info.Machine.Hostname)
	if host == "" {
		host = "image"
	}
	return fmt.Sprintf("%s-%s-%05d%s", host, info.SetID[:min(8, len(info.SetID))], info.Sequence, FileExt)
}
