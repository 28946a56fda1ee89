package initramfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// framer passes a compressed stream through unchanged while walking its
// container structure, so that the decoder reading from it sees io.EOF
// exactly where the stream ends (and the next segment of the image stays
// unread), and so that sizes can be checked before a decoder allocates.
// step parses the next structural piece: it appends header bytes to pend
// with take, or sets remain to pass that many payload bytes, or sets done.
type framer struct {
	in     *source
	pend   []byte
	buf    []byte
	remain int64
	done   bool
	err    error
}

func (f *framer) read(p []byte, step func() error) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	for len(f.pend) == 0 && f.remain == 0 {
		if f.done {
			return 0, io.EOF
		}
		f.buf = f.buf[:0]
		if err := step(); err != nil {
			f.err = err
			return 0, err
		}
		f.pend = f.buf
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(f.pend) > 0 {
		n := copy(p, f.pend)
		f.pend = f.pend[n:]
		return n, nil
	}
	k := int(min(int64(len(p)), f.remain))
	n, err := f.in.Read(p[:k])
	f.remain -= int64(n)
	if n == 0 && err != nil {
		f.err = f.inError(err)
		return 0, f.err
	}
	return n, nil
}

func (f *framer) inError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated compressed stream", ErrCorrupt)
	}
	return err
}

// take reads n header bytes, appends them to the pending output and
// returns them.
func (f *framer) take(n int) ([]byte, error) {
	start := len(f.buf)
	f.buf = append(f.buf, make([]byte, n)...)
	if err := f.in.readFull(f.buf[start:]); err != nil {
		return nil, f.inError(err)
	}
	return f.buf[start:], nil
}

// xzFramer walks one xz stream (xz-file-format 1.2.1): stream header,
// blocks of LZMA2 chunks (LZMA2 is always the last filter, so a block's
// data is always LZMA2 chunks, whose sizes are explicit), index, footer.
type xzFramer struct {
	framer
	state     int
	checkSize int
	blockLen  int64
	blocks    uint64
	records   uint64
	indexLen  int64
}

const (
	xzStreamHeader = iota
	xzBlockOrIndex
	xzChunk
	xzBlockTail
	xzIndexRecords
	xzFooter
)

func (x *xzFramer) Read(p []byte) (int, error) {
	return x.read(p, x.step)
}

func xzCorrupt(format string, args ...any) error {
	return fmt.Errorf("%w: xz: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// varint reads an xz multibyte integer.
func (x *xzFramer) varint() (uint64, int, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		b, err := x.take(1)
		if err != nil {
			return 0, 0, err
		}
		v |= uint64(b[0]&0x7f) << (7 * i)
		if b[0]&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, xzCorrupt("bad multibyte integer")
}

func (x *xzFramer) step() error {
	switch x.state {
	case xzStreamHeader:
		h, err := x.take(12)
		if err != nil {
			return err
		}
		if string(h[:6]) != "\xfd7zXZ\x00" {
			return xzCorrupt("bad stream magic")
		}
		if h[6] != 0 || h[7]&0xf0 != 0 {
			return fmt.Errorf("%w: xz stream flags % x", ErrUnsupported, h[6:8])
		}
		x.checkSize = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}[h[7]&0x0f]
		x.state = xzBlockOrIndex
	case xzBlockOrIndex:
		b, err := x.take(1)
		if err != nil {
			return err
		}
		if b[0] == 0 {
			x.indexLen = 1
			n, k, err := x.varint()
			if err != nil {
				return err
			}
			if n != x.blocks {
				return xzCorrupt("index lists %d blocks, stream has %d", n, x.blocks)
			}
			x.indexLen += int64(k)
			x.records = n
			x.state = xzIndexRecords
			return nil
		}
		size := (int(b[0]) + 1) * 4
		if _, err := x.take(size - 1); err != nil {
			return err
		}
		if err := x.blockHeader(x.buf[len(x.buf)-size:]); err != nil {
			return err
		}
		x.blockLen = int64(size)
		x.state = xzChunk
	case xzChunk:
		b, err := x.take(1)
		if err != nil {
			return err
		}
		c := b[0]
		x.blockLen++
		switch {
		case c == 0:
			x.state = xzBlockTail
		case c == 1 || c == 2:
			s, err := x.take(2)
			if err != nil {
				return err
			}
			x.remain = int64(binary.BigEndian.Uint16(s)) + 1
			x.blockLen += 2 + x.remain
		case c >= 0x80:
			n := 4
			if (c>>5)&3 >= 2 {
				n = 5
			}
			s, err := x.take(n)
			if err != nil {
				return err
			}
			x.remain = int64(binary.BigEndian.Uint16(s[2:4])) + 1
			x.blockLen += int64(n) + x.remain
		default:
			return xzCorrupt("bad LZMA2 control byte %#x", c)
		}
	case xzBlockTail:
		if _, err := x.take(int(pad4(x.blockLen)) + x.checkSize); err != nil {
			return err
		}
		x.blocks++
		x.state = xzBlockOrIndex
	case xzIndexRecords:
		if x.records == 0 {
			if _, err := x.take(int(pad4(x.indexLen)) + 4); err != nil {
				return err
			}
			x.state = xzFooter
			return nil
		}
		for range 2 {
			_, k, err := x.varint()
			if err != nil {
				return err
			}
			x.indexLen += int64(k)
		}
		x.records--
	case xzFooter:
		f, err := x.take(12)
		if err != nil {
			return err
		}
		if string(f[10:]) != "YZ" {
			return xzCorrupt("bad stream footer")
		}
		x.done = true
	}
	return nil
}

// blockHeader checks the filter chain: only LZMA2 (ulikunitz/xz has no
// BCJ or delta filters), with a dictionary of at most maxWindow.
func (x *xzFramer) blockHeader(h []byte) error {
	flags := h[1]
	if flags&0x3c != 0 {
		return xzCorrupt("reserved block flags %#x", flags)
	}
	r := h[2 : len(h)-4]
	uvarint := func() (uint64, bool) {
		var v uint64
		for i := 0; i < 9 && len(r) > 0; i++ {
			b := r[0]
			r = r[1:]
			v |= uint64(b&0x7f) << (7 * i)
			if b&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			if _, ok := uvarint(); !ok {
				return xzCorrupt("bad block header")
			}
		}
	}
	filters := int(flags&3) + 1
	for i := range filters {
		id, ok1 := uvarint()
		size, ok2 := uvarint()
		if !ok1 || !ok2 || size > uint64(len(r)) {
			return xzCorrupt("bad block header")
		}
		props := r[:size]
		r = r[size:]
		if id != 0x21 || i != filters-1 {
			return fmt.Errorf("%w: xz filter %#x (only LZMA2 alone is supported)", ErrUnsupported, id)
		}
		if len(props) != 1 || props[0] > 40 {
			return xzCorrupt("bad LZMA2 properties")
		}
		code := uint64(props[0])
		dict := uint64(1<<32 - 1)
		if code < 40 {
			dict = (2 | code&1) << (code/2 + 11)
		}
		if dict > uint64(maxWindow) {
			return fmt.Errorf("%w: xz dictionary of %d bytes", ErrTooLarge, dict)
		}
	}
	return nil
}

// zstdFramer walks a run of zstd frames and skippable frames (RFC 8878):
// after a frame it continues only if another frame follows.
type zstdFramer struct {
	framer
	state    int
	checksum bool
}

const (
	zstdFrameStart = iota
	zstdFrameHeader
	zstdBlock
	zstdFrameEnd
	zstdAfterFrame
)

const (
	zstdMagic     = 0xfd2fb528
	zstdSkipMagic = 0x184d2a50 // low 4 bits free
	zstdMaxBlock  = 128 << 10
)

func (z *zstdFramer) Read(p []byte) (int, error) { return z.read(p, z.step) }

func zstdCorrupt(format string, args ...any) error {
	return fmt.Errorf("%w: zstd: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func (z *zstdFramer) step() error {
	switch z.state {
	case zstdFrameStart:
		m, err := z.take(4)
		if err != nil {
			return err
		}
		switch v := binary.LittleEndian.Uint32(m); {
		case v == zstdMagic:
			z.state = zstdFrameHeader
		case v&^0xf == zstdSkipMagic:
			s, err := z.take(4)
			if err != nil {
				return err
			}
			z.remain = int64(binary.LittleEndian.Uint32(s))
			z.state = zstdAfterFrame
		default:
			return zstdCorrupt("bad frame magic")
		}
	case zstdFrameHeader:
		b, err := z.take(1)
		if err != nil {
			return err
		}
		fhd := b[0]
		if fhd&0x08 != 0 {
			return zstdCorrupt("reserved frame header bit")
		}
		single := fhd&0x20 != 0
		n := [4]int{0, 1, 2, 4}[fhd&3]
		if !single {
			n++
		}
		fcs := [4]int{0, 2, 4, 8}[fhd>>6]
		if fhd>>6 == 0 && single {
			fcs = 1
		}
		if _, err := z.take(n + fcs); err != nil {
			return err
		}
		z.checksum = fhd&0x04 != 0
		z.state = zstdBlock
	case zstdBlock:
		b, err := z.take(3)
		if err != nil {
			return err
		}
		h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		size := int64(h >> 3)
		switch (h >> 1) & 3 {
		case 0, 2:
			if size > zstdMaxBlock {
				return zstdCorrupt("block of %d bytes", size)
			}
			z.remain = size
		case 1:
			z.remain = 1
		default:
			return zstdCorrupt("reserved block type")
		}
		if h&1 != 0 {
			z.state = zstdFrameEnd
		}
	case zstdFrameEnd:
		if z.checksum {
			if _, err := z.take(4); err != nil {
				return err
			}
		}
		z.state = zstdAfterFrame
	case zstdAfterFrame:
		m, _ := z.in.peek(4)
		if len(m) == 4 {
			v := binary.LittleEndian.Uint32(m)
			if v == zstdMagic || v&^0xf == zstdSkipMagic {
				z.state = zstdFrameStart
				return nil
			}
		}
		z.done = true
	}
	return nil
}
