package initramfs

import (
	"errors"
	"fmt"
	"io"
)

const (
	sourceBufSize = 64 << 10
	// sourceHistory is how many already-consumed bytes fill keeps, so
	// that unread can give back the few bytes a decoder read past the
	// end of its stream.
	sourceHistory = 16
)

// budget is the number of decompressed bytes still allowed, shared by
// every compressed member of one Read.
type budget struct {
	left int64
}

// source is a small buffered reader that knows its stream offset (cpio
// alignment is relative to the start of a stream), can peek and give back
// a few consumed bytes, and charges the bytes it pulls from r to an
// optional budget. It implements io.Reader and io.ByteReader, so the
// decompressors that take an io.ByteReader read from it byte-exactly.
type source struct {
	r        io.Reader
	buf      []byte
	pos, end int
	off      int64 // stream offset of buf[pos]
	err      error // sticky error from r: io.EOF, an I/O error or ErrTooLarge
	budget   *budget
}

func newSource(r io.Reader, b *budget) *source {
	return &source{r: r, buf: make([]byte, sourceBufSize), budget: b}
}

func (s *source) buffered() int { return s.end - s.pos }

// fill reads once from r into the buffer; it returns the sticky error
// when nothing could be added.
func (s *source) fill() error {
	if s.err != nil {
		return s.err
	}
	if s.end == len(s.buf) {
		keep := min(s.pos, sourceHistory)
		n := copy(s.buf, s.buf[s.pos-keep:s.end])
		s.pos, s.end = keep, n
	}
	for tries := 0; tries < 100; tries++ {
		n, err := s.r.Read(s.buf[s.end:])
		if n < 0 || n > len(s.buf)-s.end {
			s.err = fmt.Errorf("%w: reader returned %d bytes", ErrCorrupt, n)
			return s.err
		}
		if n > 0 && s.budget != nil {
			s.budget.left -= int64(n)
			if s.budget.left < 0 {
				n += int(s.budget.left) // serve nothing beyond the limit
				s.budget.left = 0
				s.err = fmt.Errorf("%w: decompressed data exceeds the limit", ErrTooLarge)
				err = nil
			}
		}
		s.end += n
		if err != nil {
			s.err = err
		}
		if n > 0 {
			return nil
		}
		if s.err != nil {
			return s.err
		}
	}
	s.err = io.ErrNoProgress
	return s.err
}

// peek returns up to n (≤ sourceBufSize-sourceHistory) unread bytes
// without consuming them; fewer only at the end of the stream or on error,
// together with that error.
func (s *source) peek(n int) ([]byte, error) {
	for s.buffered() < n {
		if err := s.fill(); err != nil {
			return s.buf[s.pos:s.end], err
		}
	}
	return s.buf[s.pos : s.pos+n], nil
}

func (s *source) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.buffered() == 0 {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf[s.pos:s.end])
	s.pos += n
	s.off += int64(n)
	return n, nil
}

func (s *source) ReadByte() (byte, error) {
	if s.buffered() == 0 {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	b := s.buf[s.pos]
	s.pos++
	s.off++
	return b, nil
}

// unread gives back the last n consumed bytes (n ≤ sourceHistory).
func (s *source) unread(n int) bool {
	if n < 0 || n > s.pos {
		return false
	}
	s.pos -= n
	s.off -= int64(n)
	return true
}

// readFull fills p; a stream that ends early gives io.ErrUnexpectedEOF.
func (s *source) readFull(p []byte) error {
	for len(p) > 0 {
		n, err := s.Read(p)
		p = p[n:]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// discard skips n bytes, passing them to sum when it is not nil.
func (s *source) discard(n int64, sum func([]byte)) error {
	for n > 0 {
		if s.buffered() == 0 {
			if err := s.fill(); err != nil {
				if errors.Is(err, io.EOF) {
					return io.ErrUnexpectedEOF
				}
				return err
			}
		}
		k := int(min(int64(s.buffered()), n))
		if sum != nil {
			sum(s.buf[s.pos : s.pos+k])
		}
		s.pos += k
		s.off += int64(k)
		n -= int64(k)
	}
	return nil
}

// skipZeros consumes zero bytes up to the first other byte, the end of
// the stream or an error (which the next read reports).
func (s *source) skipZeros() {
	for {
		if s.buffered() == 0 && s.fill() != nil {
			return
		}
		for s.pos < s.end {
			if s.buf[s.pos] != 0 {
				return
			}
			s.pos++
			s.off++
		}
	}
}
