package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// parser walks an image the way the kernel's unpack_to_rootfs does: at the
// top level, zero bytes are padding, "0707…" at a 4-aligned offset starts
// an uncompressed archive, anything else must be a compressed member whose
// output is itself a sequence of complete archives and zero padding.
type parser struct {
	in     *source
	budget budget
	arch   *Archive
	hdr    [cpioHeaderLen]byte
	name   []byte

	// ReadFile state.
	want      string
	found     bool
	foundMode fs.FileMode
	foundBig  bool
	foundData []byte
}

func newParser(r io.Reader, limit int64, want string) *parser {
	if limit <= 0 {
		limit = DefaultLimit
	}
	p := &parser{
		budget: budget{left: limit},
		arch: &Archive{
			modules:  map[string]bool{},
			versions: map[string]bool{},
			builtin:  map[string][]string{},
		},
		want: want,
	}
	p.in = newSource(r, nil)
	return p
}

// ioError maps an error from a source to a package error: truncation is
// corruption, I/O errors of the caller's reader pass through.
func ioError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrTooLarge), errors.Is(err, ErrUnsupported):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %s: truncated", ErrCorrupt, what)
	}
	return fmt.Errorf("initramfs: %s: %w", what, err)
}

func (p *parser) run() error {
	for {
		b, err := p.in.peek(1)
		if len(b) == 0 {
			if errors.Is(err, io.EOF) {
				break
			}
			return ioError(err, "reading image")
		}
		if b[0] == 0 {
			p.in.skipZeros()
			continue
		}
		off := p.in.off
		magic, _ := p.in.peek(6)
		if b[0] == '0' {
			if off%4 != 0 {
				return fmt.Errorf("%w: cpio archive at unaligned offset %d", ErrCorrupt, off)
			}
			p.arch.Segments = append(p.arch.Segments, Segment{Format: "cpio", Offset: off})
			if err := p.archive(p.in); err != nil {
				return err
			}
			continue
		}
		f := detect(magic)
		if f == nil {
			return fmt.Errorf("%w: unknown format (magic % x) at offset %d", ErrUnsupported, magic, off)
		}
		if f.open == nil {
			return fmt.Errorf("%w: %s at offset %d", ErrUnsupported, f.name, off)
		}
		p.arch.Segments = append(p.arch.Segments, Segment{Format: f.name, Offset: off})
		if err := p.member(f, off); err != nil {
			return err
		}
		if p.in.off == off {
			// Cannot happen with the decoders used, but never loop.
			return fmt.Errorf("%w: empty %s member at offset %d", ErrCorrupt, f.name, off)
		}
	}
	if len(p.arch.Segments) == 0 {
		return fmt.Errorf("%w: no cpio archive in image", ErrCorrupt)
	}
	return nil
}

// member decompresses one compressed member starting at off and parses its
// archives.
func (p *parser) member(f *format, off int64) (err error) {
	what := fmt.Sprintf("%s member at offset %d", f.name, off)
	dec, err := safeOpen(f, p.in)
	if err != nil {
		return p.decodeError(err, what)
	}
	defer func() {
		if cerr := dec.Close(); err == nil && cerr != nil {
			err = p.decodeError(cerr, what)
		}
	}()
	out := newSource(&guardReader{r: dec, classify: func(e error) error { return p.decodeError(e, what) }}, &p.budget)
	archives := 0
	for {
		b, err := out.peek(1)
		if len(b) == 0 {
			if errors.Is(err, io.EOF) {
				if archives == 0 {
					// The kernel would accept it, but no generator writes
					// one: it is most likely a cut image.
					return fmt.Errorf("%w: %s holds no cpio archive", ErrCorrupt, what)
				}
				return nil
			}
			return ioError(err, what)
		}
		switch b[0] {
		case 0:
			// Zero padding between archives; the next archive must be
			// 4-aligned in the decompressed stream.
			out.skipZeros()
			if b, _ := out.peek(1); len(b) > 0 && out.off%4 != 0 {
				return fmt.Errorf("%w: %s: broken padding at %d", ErrCorrupt, what, out.off)
			}
		case '0':
			if err := p.archive(out); err != nil {
				return err
			}
			archives++
		default:
			if m, _ := out.peek(2); len(m) == 2 && (m[0] == 0xc7 && m[1] == 0x71 || m[0] == 0x71 && m[1] == 0xc7) {
				return fmt.Errorf("%w: %s: old binary cpio archive", ErrUnsupported, what)
			}
			return fmt.Errorf("%w: %s: junk at decompressed offset %d", ErrCorrupt, what, out.off)
		}
	}
}

// decodeError classifies an error that a decompressor returned: errors
// from our own readers (caller I/O, framing checks, limits) win over the
// decoder's own wording; anything else is corruption.
func (p *parser) decodeError(err error, what string) error {
	if err == nil {
		return nil
	}
	if p.in.err != nil && !errors.Is(p.in.err, io.EOF) {
		return ioError(p.in.err, what)
	}
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnsupported) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return fmt.Errorf("%w: %s: %v", ErrTooLarge, what, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || (errors.Is(err, io.EOF) && errors.Is(p.in.err, io.EOF)) {
		return fmt.Errorf("%w: %s: truncated", ErrCorrupt, what)
	}
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
}

// safeOpen starts a decoder (which reads its header), turning a panic in
// third-party code into ErrCorrupt.
func safeOpen(f *format, in *source) (dec io.ReadCloser, err error) {
	defer func() {
		if v := recover(); v != nil {
			dec, err = nil, fmt.Errorf("%w: %s decoder failed: %v", ErrCorrupt, f.name, v)
		}
	}()
	return f.open(in)
}

// guardReader turns a decoder's errors into package errors and a panic
// inside a third-party decoder into ErrCorrupt.
type guardReader struct {
	r        io.Reader
	classify func(error) error
}

func (g *guardReader) Read(b []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			n, err = 0, fmt.Errorf("%w: decoder failed: %v", ErrCorrupt, v)
		}
	}()
	n, err = g.r.Read(b)
	if err != nil && err != io.EOF {
		err = g.classify(err)
	}
	return n, err
}

const cpioHeaderLen = 110

// archive parses one cpio archive, up to and including its TRAILER!!!.
func (p *parser) archive(s *source) error {
	for {
		start := s.off
		hdr := p.hdr[:]
		if err := s.readFull(hdr); err != nil {
			return ioError(err, fmt.Sprintf("cpio header at %d", start))
		}
		crc := false
		switch string(hdr[:6]) {
		case "070701":
		case "070702":
			crc = true
		case "070707":
			return fmt.Errorf("%w: odc cpio archive at %d (the kernel needs newc: cpio -H newc)", ErrUnsupported, start)
		default:
			if hdr[0] == 0xc7 && hdr[1] == 0x71 || hdr[0] == 0x71 && hdr[1] == 0xc7 {
				return fmt.Errorf("%w: old binary cpio archive at %d", ErrUnsupported, start)
			}
			return fmt.Errorf("%w: no cpio magic at %d (% x)", ErrCorrupt, start, hdr[:6])
		}
		var field [13]uint32
		for i := range field {
			v, ok := parseHex8(hdr[6+8*i : 14+8*i])
			if !ok {
				return fmt.Errorf("%w: bad cpio header field %d at %d", ErrCorrupt, i, start)
			}
			field[i] = v
		}
		mode, size, nameSize, check := field[1], int64(field[6]), int64(field[11]), field[12]
		if nameSize < 1 || nameSize > maxPath {
			return fmt.Errorf("%w: cpio name size %d at %d", ErrCorrupt, nameSize, start)
		}
		if cap(p.name) < int(nameSize) {
			p.name = make([]byte, maxPath)
		}
		nb := p.name[:nameSize]
		if err := s.readFull(nb); err != nil {
			return ioError(err, fmt.Sprintf("cpio name at %d", start))
		}
		if nb[nameSize-1] != 0 {
			return fmt.Errorf("%w: cpio name without NUL at %d", ErrCorrupt, start)
		}
		if i := bytes.IndexByte(nb, 0); i >= 0 {
			nb = nb[:i]
		}
		name := string(nb)
		if err := s.discard(pad4(s.off-start), nil); err != nil {
			return ioError(err, fmt.Sprintf("cpio name padding at %d", start))
		}
		if name == "TRAILER!!!" {
			if err := s.discard(size+pad4(size), nil); err != nil {
				return ioError(err, fmt.Sprintf("cpio trailer at %d", start))
			}
			return nil
		}
		if len(p.arch.Entries) >= maxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrTooLarge, maxEntries)
		}
		e := Entry{Name: name, Mode: fileMode(mode), Size: size}
		if err := p.body(s, &e, crc, check); err != nil {
			return ioError(err, fmt.Sprintf("data of %q at %d", name, start))
		}
		if err := s.discard(pad4(size), nil); err != nil {
			return ioError(err, fmt.Sprintf("data padding of %q at %d", name, start))
		}
		p.arch.Entries = append(p.arch.Entries, e)
	}
}

func pad4(n int64) int64 { return (4 - n%4) % 4 }

// parseHex8 parses the 8 hex digits of a newc header field.
func parseHex8(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

// body consumes an entry's data, keeping what is asked for, and records
// what the entry tells about modules.
func (p *parser) body(s *source, e *Entry, crc bool, check uint32) error {
	clean := cleanName(e.Name)
	ver, rest, inModules := splitModulesPath(clean)
	if inModules {
		p.arch.versions[ver] = true
	}
	regular := e.Mode.Type() == 0
	var sum uint32
	var sumFn func([]byte)
	if crc && regular {
		sumFn = func(b []byte) {
			for _, c := range b {
				sum += uint32(c)
			}
		}
	}
	var keepCap int64
	wantFile := p.want != "" && clean == p.want
	builtinList := inModules && isBuiltinList(rest)
	switch {
	case e.Mode.Type() == fs.ModeSymlink:
		keepCap = maxPath
	case regular && wantFile:
		keepCap = MaxReadFile
	case regular && builtinList:
		keepCap = maxBuiltinFile
	}
	var data []byte
	if keepCap > 0 && e.Size <= keepCap {
		var err error
		if data, err = readKept(s, e.Size); err != nil {
			return err
		}
		if sumFn != nil {
			sumFn(data)
		}
	} else if err := s.discard(e.Size, sumFn); err != nil {
		return err
	}
	if crc && regular && sum != check {
		return fmt.Errorf("%w: checksum %#x, header says %#x", ErrCorrupt, sum, check)
	}

	if wantFile {
		p.found, p.foundMode = true, e.Mode
		p.foundBig = regular && e.Size > MaxReadFile
		p.foundData = nil
		if regular && !p.foundBig {
			p.foundData = data
		}
	}
	switch {
	case e.Mode.Type() == fs.ModeSymlink:
		if data != nil {
			e.LinkTarget = string(data)
		}
	case inModules && builtinList:
		if regular && data != nil {
			p.arch.builtin[clean] = parseBuiltin(rest, data)
		} else {
			delete(p.arch.builtin, clean)
		}
	}
	if inModules && regular {
		if m, ok := isModuleFile(rest); ok {
			p.arch.modules[m] = true
		}
	}
	return nil
}

// readKept reads the n bytes of an entry's data it keeps, growing the
// buffer as the bytes arrive: a header claiming megabytes in front of a
// truncated stream must not allocate them.
func readKept(s *source, n int64) ([]byte, error) {
	data := make([]byte, 0, min(n, 64<<10))
	for int64(len(data)) < n {
		if len(data) == cap(data) {
			data = slices.Grow(data, int(min(n, 2*int64(cap(data))))-len(data))
		}
		k := int(min(n-int64(len(data)), int64(cap(data)-len(data))))
		if err := s.readFull(data[len(data) : len(data)+k]); err != nil {
			return nil, err
		}
		data = data[:len(data)+k]
	}
	return data, nil
}

// fileMode converts a cpio (Unix st_mode) mode to an fs.FileMode.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & 0o170000 {
	case 0o100000:
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	case 0o020000:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		mode |= fs.ModeDevice
	case 0o010000:
		mode |= fs.ModeNamedPipe
	case 0o140000:
		mode |= fs.ModeSocket
	default:
		mode |= fs.ModeIrregular
	}
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
