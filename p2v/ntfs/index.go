package ntfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

// Index entry flags.
const (
	ieSubnode = 0x01
	ieLast    = 0x02
)

// File name namespaces.
const nsDOS = 2

// indexEntry is one entry of an $I30 index node.
type indexEntry struct {
	ref   uint64
	name  []uint16
	ns    uint8
	last  bool
	child int64 // VCN of the sub-node, or -1
}

// index is a directory's $I30 index: its root node entries and the
// allocation stream holding INDX blocks.
type index struct {
	f         *File
	root      []indexEntry
	alloc     *stream
	bitmap    []byte
	blockSize int64
	vcnUnit   int64 // bytes per index VCN
}

// openIndex reads a directory's $INDEX_ROOT and locates its allocation.
func (f *File) openIndex() (*index, error) {
	var ra *attr
	for _, a := range f.attrs {
		if a.typ == atIndexRoot && a.name == "$I30" {
			ra = a
			break
		}
	}
	if ra == nil {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNotFound, f.name)
	}
	if ra.nonResident {
		return nil, corruptf("%s: non-resident $INDEX_ROOT", f.name)
	}
	b := ra.value
	if len(b) < 0x20 {
		return nil, corruptf("%s: $INDEX_ROOT of %d bytes", f.name, len(b))
	}
	le := binary.LittleEndian
	if t := le.Uint32(b); t != atFileName {
		return nil, corruptf("%s: $I30 indexes attribute 0x%x", f.name, t)
	}
	ix := &index{f: f, blockSize: int64(le.Uint32(b[8:]))}
	root, err := parseEntries(b[0x10:], f.name+" $INDEX_ROOT")
	if err != nil {
		return nil, err
	}
	ix.root = root
	hasChildren := false
	for _, e := range root {
		if e.child >= 0 {
			hasChildren = true
		}
	}
	if !hasChildren {
		return ix, nil
	}
	if ix.blockSize < fixupStride || ix.blockSize > maxIndexSize || ix.blockSize%fixupStride != 0 {
		return nil, corruptf("%s: index block size %d", f.name, ix.blockSize)
	}
	ix.vcnUnit = f.v.clusterSize
	if ix.blockSize < f.v.clusterSize {
		ix.vcnUnit = fixupStride
	}
	ix.alloc, err = f.v.newStream(f.attrs, atIndexAllocation, "$I30")
	if err != nil {
		if errors.Is(err, errNoAttr) {
			return nil, corruptf("%s: index has sub-nodes but no $INDEX_ALLOCATION", f.name)
		}
		return nil, err
	}
	if bm, err := f.v.newStream(f.attrs, atBitmap, "$I30"); err == nil {
		if bm.size > maxIndexBitmap {
			return nil, corruptf("%s: index bitmap of %d bytes", f.name, bm.size)
		}
		ix.bitmap = make([]byte, bm.size)
		if err := bm.readAt(ix.bitmap, 0); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, errNoAttr) {
		return nil, err
	}
	return ix, nil
}

// parseEntries parses the index entries after an index node header (the
// header of an $INDEX_ROOT or of an INDX block).
func parseEntries(h []byte, what string) ([]indexEntry, error) {
	le := binary.LittleEndian
	if len(h) < 0x10 {
		return nil, corruptf("%s: index header truncated", what)
	}
	first := int64(le.Uint32(h))
	end := int64(le.Uint32(h[4:]))
	if first < 0x10 || end > int64(len(h)) || first > end {
		return nil, corruptf("%s: index entries %d..%d in %d bytes", what, first, end, len(h))
	}
	var out []indexEntry
	for off := int(first); ; {
		if int64(off)+0x10 > end {
			return nil, corruptf("%s: index entries end without a last entry", what)
		}
		e := h[off:end]
		n := int(le.Uint16(e[8:]))
		keyLen := int(le.Uint16(e[10:]))
		flags := le.Uint16(e[12:])
		if n < 0x10 || n > len(e) || n%8 != 0 {
			return nil, corruptf("%s: index entry at %d of length %d", what, off, n)
		}
		ie := indexEntry{ref: le.Uint64(e), child: -1, last: flags&ieLast != 0}
		if flags&ieSubnode != 0 {
			if n < 0x18 {
				return nil, corruptf("%s: index entry at %d too short for a sub-node", what, off)
			}
			c := int64(le.Uint64(e[n-8:]))
			if c < 0 || c > maxVCN {
				return nil, corruptf("%s: sub-node VCN %d", what, c)
			}
			ie.child = c
		}
		if !ie.last {
			if keyLen < 0x42 || 0x10+keyLen > n {
				return nil, corruptf("%s: index key of %d bytes", what, keyLen)
			}
			k := e[0x10 : 0x10+keyLen]
			nl := int(k[0x40])
			if 0x42+2*nl > keyLen {
				return nil, corruptf("%s: file name of %d characters in a %d-byte key", what, nl, keyLen)
			}
			ie.ns = k[0x41]
			ie.name = make([]uint16, nl)
			for i := range ie.name {
				ie.name[i] = le.Uint16(k[0x42+2*i:])
			}
		}
		out = append(out, ie)
		if ie.last {
			return out, nil
		}
		if len(out) >= maxDirEntries {
			return nil, corruptf("%s: too many index entries", what)
		}
		off += n
	}
}

// node reads the INDX block at vcn and returns its entries.
func (ix *index) node(vcn int64) ([]indexEntry, error) {
	what := fmt.Sprintf("%s index block %d", ix.f.name, vcn)
	if ix.alloc == nil {
		return nil, corruptf("%s: no $INDEX_ALLOCATION", what)
	}
	if ix.bitmap != nil {
		// The bitmap has one bit per index block.
		bit := vcn * ix.vcnUnit / ix.blockSize
		if bit/8 >= int64(len(ix.bitmap)) || ix.bitmap[bit/8]&(1<<(bit%8)) == 0 {
			return nil, corruptf("%s: block not in use", what)
		}
	}
	off := vcn * ix.vcnUnit
	if off/ix.vcnUnit != vcn || off > ix.alloc.size || ix.blockSize > ix.alloc.size-off {
		return nil, corruptf("%s: outside the $INDEX_ALLOCATION", what)
	}
	buf := make([]byte, ix.blockSize)
	if err := ix.alloc.readAt(buf, off); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if string(buf[:4]) != "INDX" {
		return nil, corruptf("%s: signature %q", what, buf[:4])
	}
	if err := applyFixups(buf, what); err != nil {
		return nil, err
	}
	if got := int64(binary.LittleEndian.Uint64(buf[0x10:])); got != vcn {
		return nil, corruptf("%s: block says it is at VCN %d", what, got)
	}
	return parseEntries(buf[0x18:], what)
}

// lookupEntry searches the directory's index for name and returns the
// MFT reference it names.
func (f *File) lookupEntry(name string) (uint64, error) {
	up, err := f.v.upcaseTable()
	if err != nil {
		return 0, err
	}
	ix, err := f.openIndex()
	if err != nil {
		return 0, err
	}
	target := utf16.Encode([]rune(name))
	entries := ix.root
	for depth := 0; depth <= maxIndexDepth; depth++ {
		next := int64(-1)
		for _, e := range entries {
			if !e.last {
				c := collate(up, target, e.name)
				if c == 0 {
					return e.ref, nil
				}
				if c > 0 {
					continue
				}
			}
			next = e.child
			break
		}
		if next < 0 {
			return 0, fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		if entries, err = ix.node(next); err != nil {
			return 0, err
		}
	}
	return 0, corruptf("%s: index deeper than %d levels", f.name, maxIndexDepth)
}

// ReadDir returns the names in the directory in collation order (an
// in-order walk of its $I30 B-tree), without DOS (8.3) aliases and without
// the root's "." entry. Hard links appear once per name.
func (f *File) ReadDir() ([]string, error) {
	ix, err := f.openIndex()
	if err != nil {
		return nil, err
	}
	var names []string
	visited := map[int64]bool{}
	var walk func(entries []indexEntry, depth int) error
	walk = func(entries []indexEntry, depth int) error {
		if depth > maxIndexDepth {
			return corruptf("%s: index deeper than %d levels", f.name, maxIndexDepth)
		}
		for _, e := range entries {
			if e.child >= 0 {
				if visited[e.child] {
					return corruptf("%s: index block %d referenced twice", f.name, e.child)
				}
				visited[e.child] = true
				sub, err := ix.node(e.child)
				if err != nil {
					return err
				}
				if err := walk(sub, depth+1); err != nil {
					return err
				}
			}
			if e.last {
				break
			}
			if e.ns == nsDOS {
				continue
			}
			n := string(utf16.Decode(e.name))
			if n == "." && refNum(e.ref) == f.num {
				continue
			}
			if len(names) >= maxDirEntries {
				return corruptf("%s: more than %d entries", f.name, maxDirEntries)
			}
			names = append(names, n)
		}
		return nil
	}
	if err := walk(ix.root, 0); err != nil {
		return nil, err
	}
	return names, nil
}

// collate compares two names as NTFS's file name collation does, ignoring
// case: code unit by code unit through $UpCase, then by length.
func collate(up []uint16, a, b []uint16) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := up[a[i]], up[b[i]]
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// upcaseTable loads and caches the volume's $UpCase table (record 10).
func (v *Volume) upcaseTable() ([]uint16, error) {
	v.upcaseOnce.Do(func() {
		v.upcase, v.upcaseErr = v.loadUpcase()
	})
	return v.upcase, v.upcaseErr
}

func (v *Volume) loadUpcase() ([]uint16, error) {
	f, err := v.loadFile(recUpCase, "$UpCase")
	if err != nil {
		return nil, fmt.Errorf("$UpCase: %w", err)
	}
	s, err := f.data()
	if err != nil {
		return nil, fmt.Errorf("$UpCase: %w", err)
	}
	n := s.size
	if n > 2*upcaseEntries {
		n = 2 * upcaseEntries
	}
	buf := make([]byte, n)
	if err := s.readAt(buf, 0); err != nil {
		return nil, fmt.Errorf("$UpCase: %w", err)
	}
	up := make([]uint16, upcaseEntries)
	for i := range up {
		up[i] = uint16(i)
	}
	for i := 0; i+1 < len(buf); i += 2 {
		up[i/2] = binary.LittleEndian.Uint16(buf[i:])
	}
	return up, nil
}
