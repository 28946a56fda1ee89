package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// maxChainDepth bounds a chain: ESXi allows 32 links; a loop of
// parentFileNameHints must not hang the reader.
const maxChainDepth = 64

// Link describes one disk of a chain, leaf first.
type Link struct {
	Name       string // file name in the file system the chain was opened from
	Descriptor *Descriptor
	extents    []extentReader
	starts     []int64
}

// Chain is a VMDK disk and its parents, read as the content of the leaf:
// where a link does not hold a grain, its parent's is read, and below the
// base disk zeros. Chain is safe for concurrent ReadAt calls.
type Chain struct {
	links   []*Link
	size    int64
	closers []io.Closer
	// tableFiles are the sparse and COWD extent files opened so far: each
	// may be named once, so that a descriptor repeating one extent line
	// cannot make the chain decode (and keep) its grain directory
	// thousands of times.
	tableFiles map[string]bool
}

// OpenChain opens the disk whose descriptor (or monolithic sparse file) is
// name in fsys and follows parentFileNameHint through its parents,
// checking that every child's parentCID is its parent's CID. It reads
// flat (FLAT, VMFS), hosted sparse and streamOptimized (SPARSE), vmfsSparse
// (VMFSSPARSE, COWD) and ZERO extents. Files opened from fsys must
// implement io.ReaderAt (os.DirFS's do).
func OpenChain(fsys fs.FS, name string) (*Chain, error) {
	c := &Chain{tableFiles: map[string]bool{}}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	seen := map[string]bool{}
	for name != "" {
		if len(c.links) == maxChainDepth {
			return nil, &FileError{name, fmt.Errorf("%w: chain deeper than %d links", ErrUnsupported, maxChainDepth)}
		}
		if seen[name] {
			child := c.links[len(c.links)-1]
			return nil, &FileError{child.Name, fmt.Errorf("%w: parentFileNameHint %q loops back to a link of the chain", ErrCorrupt, child.Descriptor.ParentFileNameHint)}
		}
		seen[name] = true
		l, err := c.openLink(fsys, name)
		if err != nil {
			return nil, &FileError{name, err}
		}
		size := l.size()
		if len(c.links) == 0 {
			c.size = size
		} else {
			child := c.links[len(c.links)-1]
			if size != c.size {
				return nil, &FileError{name, fmt.Errorf("%w: parent of %d bytes under a child of %d", ErrCorrupt, size, c.size)}
			}
			if child.Descriptor.ParentCID != l.Descriptor.CID {
				return nil, &FileError{child.Name, fmt.Errorf("%w: parentCID %08x, but %s has CID %08x", ErrCIDMismatch, child.Descriptor.ParentCID, name, l.Descriptor.CID)}
			}
		}
		c.links = append(c.links, l)
		name = ""
		if l.Descriptor.ParentCID != NoParent {
			hint := l.Descriptor.ParentFileNameHint
			if hint == "" {
				return nil, &FileError{l.Name, fmt.Errorf("%w: parentCID without parentFileNameHint", ErrCorrupt)}
			}
			name = resolve(l.Name, hint)
		}
	}
	ok = true
	return c, nil
}

// resolve finds a parent hint relative to the child's directory; an
// absolute ESXi path (/vmfs/volumes/…) is looked up by its base name in the
// child's directory, where StandbyKit keeps every link of a chain.
func resolve(child, hint string) string {
	if path.IsAbs(hint) {
		hint = path.Base(hint)
	}
	return path.Join(path.Dir(child), hint)
}

func (c *Chain) open(fsys fs.FS, name string) (io.ReaderAt, int64, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, err
	}
	c.closers = append(c.closers, f)
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	r, ok := f.(io.ReaderAt)
	if !ok {
		return nil, 0, fmt.Errorf("%w: file system files lack ReadAt", ErrUnsupported)
	}
	return r, st.Size(), nil
}

func (c *Chain) openLink(fsys fs.FS, name string) (*Link, error) {
	r, size, err := c.open(fsys, name)
	if err != nil {
		return nil, err
	}
	head := make([]byte, min(size, 4*SectorSize))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, err
	}
	l := &Link{Name: name}
	if h, ok := decodeSparseHeader(head); ok {
		// A monolithic sparse file: its descriptor is embedded and the file
		// itself is the only extent.
		if err := c.claimTableFile(name); err != nil {
			return nil, err
		}
		t, _, err := openSparse(r, size)
		if err != nil {
			return nil, err
		}
		if h.DescriptorOffset == 0 || h.DescriptorSize == 0 || h.DescriptorSize > maxDescriptor/SectorSize {
			return nil, corruptf("sparse file without an embedded descriptor")
		}
		text := make([]byte, h.DescriptorSize*SectorSize)
		if _, err := r.ReadAt(text, int64(h.DescriptorOffset)*SectorSize); err != nil && err != io.EOF {
			return nil, corruptf("embedded descriptor: %v", err)
		}
		if l.Descriptor, err = ParseDescriptor(text); err != nil {
			return nil, err
		}
		l.add(t)
		return l, nil
	}
	if _, ok := decodeCOWDHeader(head); ok {
		return nil, fmt.Errorf("%w: a bare COWD extent; open its descriptor", ErrUnsupported)
	}
	if size > maxDescriptor {
		return nil, corruptf("not a VMDK descriptor (%d bytes, no sparse magic)", size)
	}
	text := make([]byte, size)
	if _, err := r.ReadAt(text, 0); err != nil && err != io.EOF {
		return nil, err
	}
	if l.Descriptor, err = ParseDescriptor(text); err != nil {
		return nil, err
	}
	for _, e := range l.Descriptor.Extents {
		x, err := c.openExtent(fsys, name, e)
		if err != nil {
			return nil, fmt.Errorf("extent %q: %w", e.File, err)
		}
		if x.size() < e.Sectors*SectorSize {
			return nil, corruptf("extent %q holds %d bytes, the descriptor says %d", e.File, x.size(), e.Sectors*SectorSize)
		}
		l.add(x)
	}
	if l.size() != l.Descriptor.Capacity() {
		return nil, corruptf("extents hold %d bytes, the descriptor says %d", l.size(), l.Descriptor.Capacity())
	}
	return l, nil
}

func (c *Chain) openExtent(fsys fs.FS, descName string, e Extent) (extentReader, error) {
	if e.Access != "RW" && e.Access != "RDONLY" {
		return nil, fmt.Errorf("%w: extent access %s", ErrUnsupported, e.Access)
	}
	n := e.Sectors * SectorSize
	if e.Type == ExtentZero {
		return zeroExtent{n}, nil
	}
	file := resolve(descName, e.File)
	if e.Type == ExtentSparse || e.Type == ExtentVMFSSparse {
		if err := c.claimTableFile(file); err != nil {
			return nil, err
		}
	}
	r, size, err := c.open(fsys, file)
	if err != nil {
		return nil, err
	}
	switch e.Type {
	case ExtentFlat, ExtentVMFS:
		return &flatExtent{r: r, start: e.Offset * SectorSize, n: n}, nil
	case ExtentSparse:
		t, _, err := openSparse(r, size)
		if err != nil {
			return nil, err
		}
		return clipExtent(t, n), nil
	case ExtentVMFSSparse:
		t, err := openCOWD(r, size)
		if err != nil {
			return nil, err
		}
		return clipExtent(t, n), nil
	}
	return nil, fmt.Errorf("%w: extent type %s", ErrUnsupported, e.Type)
}

// claimTableFile notes that the sparse or COWD extent file name is opened,
// which may happen once per chain: such an extent holds one range of one
// disk.
func (c *Chain) claimTableFile(name string) error {
	if c.tableFiles[name] {
		return corruptf("sparse extent file %q named twice in the chain", name)
	}
	c.tableFiles[name] = true
	return nil
}

// clipExtent makes a table extent report the size its descriptor line
// gives when that is smaller (a sparse extent's capacity is rounded up).
func clipExtent(t *tableExtent, n int64) extentReader {
	if n < t.capacity {
		t.capacity = n
	}
	return t
}

func (l *Link) add(x extentReader) {
	l.starts = append(l.starts, l.size())
	l.extents = append(l.extents, x)
}

func (l *Link) size() int64 {
	if len(l.extents) == 0 {
		return 0
	}
	last := len(l.extents) - 1
	return l.starts[last] + l.extents[last].size()
}

// readAt reads a prefix of p at off from the extent that holds off.
func (l *Link) readAt(p []byte, off int64) (int, bool, error) {
	// The last extent starting at or before off: a binary search, since a
	// descriptor may list thousands of extents.
	i := max(0, sort.Search(len(l.starts), func(i int) bool { return l.starts[i] > off })-1)
	x := l.extents[i]
	rel := off - l.starts[i]
	if rel >= x.size() {
		return 0, false, corruptf("offset %d beyond the extents", off)
	}
	n := min(int64(len(p)), x.size()-rel)
	return x.readAt(p[:n], rel)
}

// Size returns the disk's capacity in bytes.
func (c *Chain) Size() int64 { return c.size }

// Links returns the chain's links, leaf first.
func (c *Chain) Links() []Link {
	out := make([]Link, len(c.links))
	for i, l := range c.links {
		out[i] = Link{Name: l.Name, Descriptor: l.Descriptor}
	}
	return out
}

// ReadAt reads the leaf's content.
func (c *Chain) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", ErrInvalidInput)
	}
	if off >= c.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > c.size-off {
		p = p[:c.size-off]
	}
	if err := c.read(0, p, off); err != nil {
		return 0, err
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

func (c *Chain) read(depth int, p []byte, off int64) error {
	if depth == len(c.links) {
		clear(p)
		return nil
	}
	l := c.links[depth]
	for len(p) > 0 {
		n, present, err := l.readAt(p, off)
		if err != nil {
			return &FileError{l.Name, err}
		}
		if n <= 0 {
			return &FileError{l.Name, corruptf("no progress reading at %d", off)}
		}
		if !present {
			if err := c.read(depth+1, p[:n], off); err != nil {
				return err
			}
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// Close closes the files the chain opened.
func (c *Chain) Close() error {
	var errs []error
	for _, f := range c.closers {
		errs = append(errs, f.Close())
	}
	c.closers = nil
	return errors.Join(errs...)
}

// EmbeddedDescriptor returns the descriptor text of b: b itself when it is
// a text descriptor, or the descriptor embedded in a hosted sparse or
// streamOptimized file whose beginning b is (the header and descriptor
// sectors are enough).
func EmbeddedDescriptor(b []byte) ([]byte, error) {
	h, ok := decodeSparseHeader(b)
	if !ok {
		return b, nil
	}
	start, n := int64(h.DescriptorOffset)*SectorSize, int64(h.DescriptorSize)*SectorSize
	if h.DescriptorOffset == 0 || h.DescriptorOffset > uint64(len(b)) || h.DescriptorSize == 0 || h.DescriptorSize > maxDescriptor/SectorSize || start+n > int64(len(b)) {
		return nil, corruptf("embedded descriptor at sector %d (%d sectors) not within %d bytes", h.DescriptorOffset, h.DescriptorSize, len(b))
	}
	text := b[start : start+n]
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	return []byte(strings.Clone(string(text))), nil
}
