package regf

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned by this package. They are wrapped with context; test
// with errors.Is.
var (
	// ErrNotHive: the bytes do not start with a regf base block.
	ErrNotHive = errors.New("regf: not a registry hive")
	// ErrCorrupt: a structure is inconsistent (bad checksum, an offset
	// out of bounds or not at a cell, a wrong signature, ...).
	ErrCorrupt = errors.New("regf: corrupt hive")
	// ErrDirty: the primary and secondary sequence numbers differ, so the
	// hive has transactions in its .LOG1/.LOG2 files that Windows would
	// replay at boot, over any edit made to the primary file.
	ErrDirty = errors.New("regf: dirty hive (transaction logs not applied)")
	// ErrNotFound: no such key or value.
	ErrNotFound = errors.New("regf: not found")
	// ErrUnsupported: a valid structure this package does not handle.
	ErrUnsupported = errors.New("regf: unsupported")
	// ErrNoRoom: the edit needs more free cell space than the existing
	// hive bins hold; it cannot be done in place.
	ErrNoRoom = errors.New("regf: no free room in the hive for the edit")
)

const (
	baseBlockSize = 4096
	hbinHeaderLen = 32
	checksumOff   = 508
	noOffset      = 0xffffffff
)

// Hive is a parsed registry hive. It keeps a reference to the bytes given
// to Open and never modifies them.
type Hive struct {
	b          []byte // the whole file
	bins       []byte // b[4096 : 4096+binsSize]
	seq1, seq2 uint32
	major      uint32
	minor      uint32
	root       uint32 // root cell offset, relative to the first hbin

	starts []uint64 // bitmap: bit i set = a cell starts at bins offset 8*i
	free   []freeCell
	hbins  []hbinInfo
}

type freeCell struct{ off, size uint32 } // offsets relative to the first hbin

type hbinInfo struct{ off, size uint32 }

func le16(b []byte, o int) uint16 { return binary.LittleEndian.Uint16(b[o:]) }
func le32(b []byte, o int) uint32 { return binary.LittleEndian.Uint32(b[o:]) }

// Checksum computes the base block checksum of b[0:508]: the XOR of its
// 127 little-endian uint32s, where Windows maps 0 to 1 and 0xffffffff to
// 0xfffffffe. b must hold at least 508 bytes.
func Checksum(b []byte) uint32 {
	s := rawChecksum(b)
	switch s {
	case 0:
		return 1
	case 0xffffffff:
		return 0xfffffffe
	}
	return s
}

func rawChecksum(b []byte) uint32 {
	var s uint32
	for i := 0; i < checksumOff; i += 4 {
		s ^= le32(b, i)
	}
	return s
}

// Open parses the base block and walks every hive bin and cell of b. It
// refuses a dirty hive (ErrDirty). b is referenced, not copied, and must
// not change while the Hive is used.
func Open(b []byte) (*Hive, error) {
	if len(b) < 4 || string(b[:4]) != "regf" {
		return nil, fmt.Errorf("%w: no regf signature", ErrNotHive)
	}
	if len(b) < baseBlockSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the base block", ErrCorrupt, len(b))
	}
	h := &Hive{
		b:     b,
		seq1:  le32(b, 4),
		seq2:  le32(b, 8),
		major: le32(b, 20),
		minor: le32(b, 24),
		root:  le32(b, 36),
	}
	if h.major != 1 {
		return nil, fmt.Errorf("%w: hive format version %d.%d", ErrUnsupported, h.major, h.minor)
	}
	if t := le32(b, 28); t != 0 {
		return nil, fmt.Errorf("%w: file type %d is not a primary hive file", ErrUnsupported, t)
	}
	if h.seq1 != h.seq2 {
		return nil, fmt.Errorf("%w: primary sequence %d != secondary %d", ErrDirty, h.seq1, h.seq2)
	}
	if sum, raw := le32(b, checksumOff), rawChecksum(b); sum != raw && sum != Checksum(b) {
		return nil, fmt.Errorf("%w: base block checksum %#x, computed %#x", ErrCorrupt, sum, Checksum(b))
	}
	size := le32(b, 40)
	if size == 0 || size%4096 != 0 || uint64(size) > uint64(len(b)-baseBlockSize) {
		return nil, fmt.Errorf("%w: hive bins data size %#x (file has %#x bytes after the base block)", ErrCorrupt, size, len(b)-baseBlockSize)
	}
	h.bins = b[baseBlockSize : baseBlockSize+int(size)]
	h.starts = make([]uint64, (len(h.bins)/8+63)/64)
	if err := h.walkBins(); err != nil {
		return nil, err
	}
	nk, err := h.cellSig(h.root, "nk")
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	if _, err := parseKey(h, h.root, nk); err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	return h, nil
}

func (h *Hive) walkBins() error {
	n := uint32(len(h.bins))
	for off := uint32(0); off < n; {
		if n-off < hbinHeaderLen || string(h.bins[off:off+4]) != "hbin" {
			return fmt.Errorf("%w: no hbin signature at bins offset %#x", ErrCorrupt, off)
		}
		if o := le32(h.bins, int(off)+4); o != off {
			return fmt.Errorf("%w: hbin at %#x says it is at %#x", ErrCorrupt, off, o)
		}
		sz := le32(h.bins, int(off)+8)
		if sz < 4096 || sz%4096 != 0 || sz > n-off {
			return fmt.Errorf("%w: hbin at %#x has size %#x", ErrCorrupt, off, sz)
		}
		h.hbins = append(h.hbins, hbinInfo{off, sz})
		end := off + sz
		for c := off + hbinHeaderLen; c < end; {
			if end-c < 8 {
				return fmt.Errorf("%w: truncated cell at bins offset %#x", ErrCorrupt, c)
			}
			raw := int32(le32(h.bins, int(c)))
			csz := uint32(raw)
			if raw < 0 {
				csz = uint32(-int64(raw))
			}
			if csz < 8 || csz%8 != 0 || csz > end-c {
				return fmt.Errorf("%w: cell at bins offset %#x has size %d", ErrCorrupt, c, raw)
			}
			h.starts[c/8/64] |= 1 << (c / 8 % 64)
			if raw > 0 {
				h.free = append(h.free, freeCell{c, csz})
			}
			c += csz
		}
		off = end
	}
	return nil
}

// isCell reports whether a cell starts at bins offset off.
func (h *Hive) isCell(off uint32) bool {
	if off%8 != 0 || uint64(off) >= uint64(len(h.bins)) {
		return false
	}
	return h.starts[off/8/64]&(1<<(off/8%64)) != 0
}

// cell returns the data of the allocated cell at off (without the size
// field).
func (h *Hive) cell(off uint32) ([]byte, error) {
	if !h.isCell(off) {
		return nil, fmt.Errorf("%w: offset %#x is not a cell", ErrCorrupt, off)
	}
	raw := int32(le32(h.bins, int(off)))
	if raw >= 0 {
		return nil, fmt.Errorf("%w: cell at %#x is free but referenced", ErrCorrupt, off)
	}
	return h.bins[off+4 : off+uint32(-int64(raw))], nil
}

// cellSig returns the cell at off after checking its 2-byte signature.
func (h *Hive) cellSig(off uint32, sig string) ([]byte, error) {
	c, err := h.cell(off)
	if err != nil {
		return nil, err
	}
	if len(c) < 2 || string(c[:2]) != sig {
		return nil, fmt.Errorf("%w: cell at %#x is not %q", ErrCorrupt, off, sig)
	}
	return c, nil
}

// fileOffset is the offset in the hive file of bins offset off.
func fileOffset(off uint32) int64 { return baseBlockSize + int64(off) }

// Sequence returns the primary and secondary sequence numbers.
func (h *Hive) Sequence() (primary, secondary uint32) { return h.seq1, h.seq2 }

// Version returns the hive format version (major is always 1).
func (h *Hive) Version() (major, minor uint32) { return h.major, h.minor }

// Root returns the root key.
func (h *Hive) Root() (*Key, error) {
	c, err := h.cellSig(h.root, "nk")
	if err != nil {
		return nil, err
	}
	return parseKey(h, h.root, c)
}

// FreeBytes returns the total size of the free cells, a bound on what
// SetDWORD can add in place.
func (h *Hive) FreeBytes() int64 {
	var n int64
	for _, f := range h.free {
		n += int64(f.size)
	}
	return n
}
