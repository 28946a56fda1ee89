package initramfs

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// maxWindow bounds the history buffer a decompressor may allocate
// (xz/lzma dictionary, zstd window): 128 MiB covers xz -9, zstd --long=27
// and every initramfs generator's settings. FuzzRead lowers it.
var maxWindow = 128 << 20

// format is a compression the kernel can unpack an initramfs from; open
// is nil for the ones this package does not read.
type format struct {
	name  string
	magic []byte
	open  func(in *source) (io.ReadCloser, error)
}

var formats = []*format{
	{name: "gzip", magic: []byte{0x1f, 0x8b}, open: openGzip},
	{name: "gzip", magic: []byte{0x1f, 0x9e}}, // old gzip, no decoder here
	{name: "xz", magic: []byte{0xfd, '7', 'z', 'X', 'Z', 0}, open: openXZ},
	zstdFormat,
	{name: "lz4", magic: []byte{0x02, 0x21, 0x4c, 0x18}, open: openLZ4Legacy},
	{name: "lz4 frame format (the kernel reads only legacy frames: lz4 -l)", magic: []byte{0x04, 0x22, 0x4d, 0x18}},
	{name: "bzip2", magic: []byte{'B', 'Z', 'h'}, open: openBzip2},
	{name: "lzma", magic: []byte{0x5d, 0, 0}, open: openLZMA},
	{name: "lzo", magic: []byte{0x89, 'L', 'Z', 'O'}},
	{name: "old binary cpio", magic: []byte{0xc7, 0x71}},
	{name: "old binary cpio", magic: []byte{0x71, 0xc7}},
}

var zstdFormat = &format{name: "zstd", magic: []byte{0x28, 0xb5, 0x2f, 0xfd}, open: openZstd}

func detect(magic []byte) *format {
	if len(magic) >= 4 && magic[0]&0xf0 == 0x50 && string(magic[1:4]) == "\x2a\x4d\x18" {
		return zstdFormat // a zstd skippable frame (the kernel wants a real frame first)
	}
	for _, f := range formats {
		if bytes.HasPrefix(magic, f.magic) {
			return f
		}
	}
	return nil
}

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

// openGzip reads one gzip member; the next member, if any, is a new
// top-level segment (the kernel's gunzip also stops after one member).
// gzip reads its input through io.ByteReader, so it stops exactly at the
// member's end.
func openGzip(in *source) (io.ReadCloser, error) {
	zr, err := gzip.NewReader(in)
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return zr, nil
}

// openXZ reads one xz stream. xzFramer delimits the stream and checks the
// dictionary size before ulikunitz/xz allocates it.
func openXZ(in *source) (io.ReadCloser, error) {
	fr := &xzFramer{framer: framer{in: in}}
	// DictCap is the least the reader allocates: the block header's
	// dictionary size (checked by fr) decides.
	xr, err := xz.ReaderConfig{DictCap: lzma.MinDictCap, SingleStream: true}.NewReader(fr)
	if err != nil {
		if fr.err != nil {
			return nil, fr.err
		}
		return nil, err
	}
	return nopCloser{&framedReader{r: xr, framer: &fr.err}}, nil
}

// openZstd reads a run of zstd frames (and skippable frames); zstdFramer
// delimits them so the decoder stops where the next segment starts.
func openZstd(in *source) (io.ReadCloser, error) {
	fr := &zstdFramer{framer: framer{in: in}}
	zd, err := zstd.NewReader(fr,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(uint64(maxWindow)),
		zstd.WithDecoderMaxMemory(uint64(maxWindow)),
	)
	if err != nil {
		return nil, err
	}
	return &zstdCloser{framedReader{r: zd, framer: &fr.err}, zd}, nil
}

type zstdCloser struct {
	framedReader
	zd *zstd.Decoder
}

func (z *zstdCloser) Close() error { z.zd.Close(); return nil }

// framedReader reports a framer's own error (it knows better than the
// decoder that saw a short read).
type framedReader struct {
	r      io.Reader
	framer *error
}

func (f *framedReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if err != nil && err != io.EOF && *f.framer != nil {
		err = *f.framer
	}
	return n, err
}

// openBzip2 reads one bzip2 stream. compress/bzip2 reads the two bytes
// after a stream to look for a concatenated one; when they are not "BZ"
// they belong to the next segment and are given back.
func openBzip2(in *source) (io.ReadCloser, error) {
	return nopCloser{&bzip2Reader{in: in, r: bzip2.NewReader(in)}}, nil
}

type bzip2Reader struct {
	in *source
	r  io.Reader
}

func (b *bzip2Reader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var se bzip2.StructuralError
	switch {
	case errors.As(err, &se) && string(se) == "bad magic value in continuation file":
		if b.in.unread(2) {
			return n, io.EOF
		}
	case errors.Is(err, io.ErrUnexpectedEOF) && b.in.err == io.EOF && b.in.buffered() == 0 &&
		b.in.pos > 0 && b.in.buf[b.in.pos-1] == 0 && b.in.unread(1):
		// One byte of zero padding after the stream: the reader took it
		// for the start of a concatenated stream. (A stream cut right
		// after a zero byte ends here too, but the reader outputs a
		// block only after reading all of it, so what was output is
		// whole, and a cut archive still fails as truncated.)
		return n, io.EOF
	}
	return n, err
}

// openLZMA reads an lzma-alone stream (13-byte header: properties,
// dictionary size, uncompressed size or -1 and an end marker).
func openLZMA(in *source) (io.ReadCloser, error) {
	h, err := in.peek(13)
	if len(h) < 13 {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if dict := binary.LittleEndian.Uint32(h[1:5]); int64(dict) > int64(maxWindow) {
		return nil, fmt.Errorf("%w: lzma dictionary of %d bytes", ErrTooLarge, dict)
	}
	if h[0] >= 9*5*5 {
		return nil, fmt.Errorf("%w: lzma properties %#x", ErrCorrupt, h[0])
	}
	lr, err := lzma.ReaderConfig{DictCap: maxWindow}.NewReader(in)
	if err != nil {
		return nil, err
	}
	return nopCloser{lr}, nil
}
