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
	// A set may hold several chains one after the other (a new full image
	// written after the newest point starts one); each starts with a
	// point whose Full reports true, and sequence numbers keep growing
	// across them. ChainStart finds a point's chain.
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
	chain   []*File // every chain, oldest first
	starts  []int   // where each chain begins in chain
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
	st, err := os.Stat(dir)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named once, by the FileError
		}
		return nil, &FileError{File: dir, Err: fmt.Errorf("image set folder: %w", err)}
	}
	if !st.IsDir() {
		return nil, &FileError{File: dir, Err: fmt.Errorf("%w: not a folder", ErrInvalidInput)}
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"+FileExt))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, &ChainError{ErrNoFullImage, dir, "no image files (*" + FileExt + ") in the folder"}
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
	chain, starts, waiting, err := linkChain(files, len(s.pending) > 0)
	if err != nil {
		return fail(err)
	}
	s.chain, s.starts = chain, starts
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

// linkChain orders files from the full images along parent links: the
// chains of the set, oldest first, one after the other. It returns them
// with the index in chain where each begins. Files whose parent is absent
// are returned as waiting when some file is still incomplete (it may be
// that parent), and are an error otherwise.
func linkChain(files []*File, someIncomplete bool) (chain []*File, starts []int, waiting []*File, err error) {
	var roots []*File
	byID := map[string]*File{}
	children := map[string][]*File{}
	for _, f := range files {
		in := &f.info
		if prev, dup := byID[in.PointID]; dup {
			return nil, nil, nil, &ChainError{ErrForkedChain, in.File, "same point as " + prev.info.File}
		}
		byID[in.PointID] = f
		if in.Full() {
			roots = append(roots, f)
			continue
		}
		children[in.ParentID] = append(children[in.ParentID], f)
	}
	if len(roots) == 0 {
		if len(files) == 0 && !someIncomplete {
			return nil, nil, nil, &ChainError{ErrNoFullImage, "", "no image files"}
		}
		if someIncomplete {
			return nil, nil, files, nil
		}
		return nil, nil, nil, &ChainError{ErrNoFullImage, files[0].info.File, "no full image among the files"}
	}
	// Chains follow each other in the order of their full images'
	// sequence numbers; two full images of one sequence are a fork.
	sort.SliceStable(roots, func(i, j int) bool { return roots[i].info.Sequence < roots[j].info.Sequence })
	first := roots[0]
	for _, f := range files {
		if f.info.SetID != first.info.SetID {
			detail := fmt.Sprintf("set %s, the full image %s is of set %s", f.info.SetID, first.info.File, first.info.SetID)
			if f.info.Full() {
				detail = "a full image of set " + f.info.SetID + " beside " + first.info.File + " of set " + first.info.SetID
			}
			return nil, nil, nil, &ChainError{ErrWrongSet, f.info.File, detail}
		}
	}
	for i, root := range roots {
		if i > 0 && root.info.Sequence == roots[i-1].info.Sequence {
			return nil, nil, nil, &ChainError{ErrForkedChain, root.info.File,
				fmt.Sprintf("second full image with sequence %d beside %s", root.info.Sequence, roots[i-1].info.File)}
		}
		if len(chain) > 0 {
			if last := chain[len(chain)-1]; last.info.Sequence >= root.info.Sequence {
				return nil, nil, nil, &ChainError{ErrForkedChain, last.info.File,
					fmt.Sprintf("point %d continues its chain past the newer full image %s (sequence %d)", last.info.Sequence, root.info.File, root.info.Sequence)}
			}
		}
		starts = append(starts, len(chain))
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
				return nil, nil, nil, &ChainError{ErrForkedChain, kids[1].info.File,
					fmt.Sprintf("%s and %s both follow %s", kids[0].info.File, kids[1].info.File, cur.info.File)}
			}
			next := kids[0]
			if next.info.Sequence != cur.info.Sequence+1 {
				return nil, nil, nil, &ChainError{ErrSequenceGap, next.info.File,
					fmt.Sprintf("sequence %d follows %d in %s", next.info.Sequence, cur.info.Sequence, cur.info.File)}
			}
			if !followsDisks(cur.info, next.info) {
				return nil, nil, nil, &ChainError{ErrDiskMismatch, next.info.File, "disks or block size differ from " + cur.info.File + " (and no resize is recorded)"}
			}
			cur = next
		}
	}
	for _, kids := range children {
		waiting = append(waiting, kids...)
	}
	if len(waiting) == 0 {
		return chain, starts, nil, nil
	}
	sort.Slice(waiting, func(i, j int) bool { return waiting[i].info.Sequence < waiting[j].info.Sequence })
	if !someIncomplete {
		f := waiting[0]
		return nil, nil, nil, &ChainError{ErrMissingParent, f.info.File,
			fmt.Sprintf("parent %s (sequence %d) is not in the set", f.info.ParentID, f.info.Sequence-1)}
	}
	return chain, starts, waiting, nil
}

// followsDisks reports whether child's disks and block size are its
// parent's, but for the resizes child records.
func followsDisks(parent, child PointInfo) bool {
	if len(parent.Disks) != len(child.Disks) || parent.BlockSize != child.BlockSize {
		return false
	}
	for d, p := range parent.Disks {
		c := child.Disks[d]
		if c.SectorSize != p.SectorSize {
			return false
		}
		from, resized := child.resizedFrom(d)
		if resized && from != p.Size || !resized && c.Size != p.Size {
			return false
		}
	}
	return true
}

// Points lists the usable points: each chain in order, oldest chain first.
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
// the files of k's chain up to k.
func (s *ImageSet) Point(k int) (Point, error) {
	if k < 0 || k >= len(s.chain) {
		return nil, invalidf("point %d of %d", k, len(s.chain))
	}
	start := 0
	for _, c := range s.starts {
		if c <= k {
			start = c
		}
	}
	return &ImagePoint{layers: s.chain[start : k+1], workers: s.workers}, nil
}

// Chains lists the set's chains, oldest first: each a full image and the
// incrementals that follow it, as Points lists them.
func (s *ImageSet) Chains() [][]PointInfo {
	points := s.Points()
	var out [][]PointInfo
	for i, start := range s.starts {
		end := len(points)
		if i+1 < len(s.starts) {
			end = s.starts[i+1]
		}
		out = append(out, points[start:end:end])
	}
	return out
}

// ChainStart returns the index in points of the full image that point k's
// chain starts with: the newest full image at or before k. It serves any
// Set, whose Points mark each chain's start with a full image.
func ChainStart(points []PointInfo, k int) int {
	for ; k > 0; k-- {
		if points[k].Full() {
			return k
		}
	}
	return 0
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
