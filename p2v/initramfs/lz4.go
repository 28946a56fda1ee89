package initramfs

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
)

// The kernel's lz4 initramfs format is the lz4 "legacy frame": the magic
// 0x184C2102, then blocks each preceded by its compressed size (LE32),
// each decompressing to 8 MiB except the last. Nothing marks the end: the
// kernel stops at the end of input, at a zero size or at 4 bytes of
// padding, and a repeated magic starts another legacy stream. pierrec/lz4
// only writes legacy frames, so blocks are decoded with its block API.
const (
	lz4LegacyMagic = 0x184c2102
	lz4LegacyBlock = 8 << 20
)

var lz4LegacyBound = lz4.CompressBlockBound(lz4LegacyBlock)

type lz4Legacy struct {
	in         *source
	comp, out  []byte
	pos        int
	started    bool
	firstBlock bool // no block yet since the last magic
	lastFull   bool // the previous block was a full 8 MiB
	done       bool
	err        error
}

func openLZ4Legacy(in *source) (io.ReadCloser, error) {
	return nopCloser{&lz4Legacy{in: in}}, nil
}

func (l *lz4Legacy) Read(p []byte) (int, error) {
	for l.pos == len(l.out) {
		if l.err != nil {
			return 0, l.err
		}
		if l.done {
			return 0, io.EOF
		}
		if err := l.next(); err != nil {
			l.err = err
			return 0, err
		}
	}
	n := copy(p, l.out[l.pos:])
	l.pos += n
	return n, nil
}

func lz4Corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: lz4: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// next decodes the next block into l.out, or sets done.
func (l *lz4Legacy) next() error {
	l.out, l.pos = l.out[:0], 0
	if !l.started {
		var m [4]byte
		if err := l.in.readFull(m[:]); err != nil || binary.LittleEndian.Uint32(m[:]) != lz4LegacyMagic {
			return lz4Corrupt("bad legacy magic")
		}
		l.started, l.firstBlock = true, true
	}
	for {
		h, err := l.in.peek(4)
		if len(h) < 4 {
			if err != nil && !isEOF(err) {
				return err
			}
			if l.firstBlock {
				return lz4Corrupt("legacy stream without blocks")
			}
			l.done = true // end of input (or a few bytes of padding)
			return nil
		}
		size := binary.LittleEndian.Uint32(h)
		if size == lz4LegacyMagic {
			l.in.pos += 4
			l.in.off += 4
			l.firstBlock = true
			continue
		}
		if l.firstBlock && size == 0 {
			return lz4Corrupt("legacy stream without blocks")
		}
		if size == 0 || !l.firstBlock && (!l.lastFull || startsSegment(h)) {
			// Padding, or what follows the last (short) block: the
			// next segment of the image.
			l.done = true
			return nil
		}
		if int64(size) > int64(lz4LegacyBound) {
			return lz4Corrupt("block of %d bytes", size)
		}
		l.in.pos += 4
		l.in.off += 4
		if cap(l.comp) < int(size) {
			l.comp = make([]byte, size)
		}
		comp := l.comp[:size]
		if err := l.in.readFull(comp); err != nil {
			if isEOF(err) {
				return lz4Corrupt("truncated block")
			}
			return err
		}
		// A block decompresses to at most 8 MiB, and lz4 expands at most
		// 255-fold: size the buffer by both.
		outCap := min(lz4LegacyBlock, 256*int(size)+64)
		if cap(l.out) < outCap {
			l.out = make([]byte, outCap)
		}
		n, err := lz4.UncompressBlock(comp, l.out[:outCap])
		if err != nil {
			return lz4Corrupt("%v", err)
		}
		l.out = l.out[:n]
		l.firstBlock = false
		l.lastFull = n == lz4LegacyBlock
		if n > 0 {
			return nil
		}
	}
}

func isEOF(err error) bool { return err == io.EOF || err == io.ErrUnexpectedEOF }

// startsSegment reports whether b looks like the start of a top-level
// segment (a cpio archive or a known compressed format).
func startsSegment(b []byte) bool {
	return len(b) > 0 && b[0] == '0' || detect(b) != nil
}
