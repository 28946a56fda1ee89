// Package fuzzimage holds what the fuzz targets of parsers of mostly-zero
// files share (file systems, volumes, VMDK extents, appliance payloads):
// a sparse input format that keeps fuzz inputs small while the files
// they stand for are kilobytes to megabytes of padding, empty table
// entries and unused sectors, and the reading and writing of Go fuzz
// corpus files.
//
// A sparse input is
//
//	uint32 LE  size, capped by the caller: in 4 KiB units (Decode,
//	           Encode) or in bytes (Unpack, Pack)
//	repeated:  uint32 LE offset, uint16 LE length, length bytes
//
// The chunks are laid over a zero image in order, a later one over an
// earlier one; a chunk past the end is cut, and a truncated last chunk
// keeps the bytes it has, so every input stands for some image. Small
// inputs keep each fuzz execution and, above all, Go's minimization of
// new inputs (which is quadratic in the input length) cheap, and
// mutating a chunk's offset moves a structure.
package fuzzimage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/standbykit/standbykit/internal/extent"
)

// Unit is the unit of the size field.
const Unit = 4096

// Chunk is a run of bytes of an image.
type Chunk struct {
	Off  int64
	Data []byte
}

// Image is a sparse image: an io.ReaderAt of Size bytes, zeros except
// for its chunks.
type Image struct {
	size   int64
	chunks []Chunk
}

// Decode reads a sparse input whose size is in Units; the image size is
// capped at maxSize. The chunks alias b.
func Decode(b []byte, maxSize int64) *Image { return decode(b, Unit, maxSize) }

// Unpack returns the file a sparse input whose size is in bytes stands
// for, of at most limit bytes; nil for an input too short to hold a size.
func Unpack(in []byte, limit int) []byte {
	if len(in) < 4 {
		return nil
	}
	return decode(in, 1, int64(limit)).Bytes()
}

func decode(b []byte, unit, maxSize int64) *Image {
	if len(b) < 4 {
		return &Image{}
	}
	img := &Image{size: min(int64(binary.LittleEndian.Uint32(b))*unit, maxSize)}
	b = b[4:]
	for len(b) >= 6 {
		off := int64(binary.LittleEndian.Uint32(b))
		n := min(int(binary.LittleEndian.Uint16(b[4:])), len(b)-6)
		img.chunks = append(img.chunks, Chunk{off, b[6 : 6+n]})
		b = b[6+n:]
	}
	return img
}

// Size returns the image size in bytes.
func (img *Image) Size() int64 { return img.size }

// ReadAt reads the image as a file of Size bytes would read.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("fuzzimage: negative offset")
	}
	if off >= img.size {
		return 0, io.EOF
	}
	var err error
	if int64(len(p)) > img.size-off {
		p, err = p[:img.size-off], io.EOF
	}
	clear(p)
	end := off + int64(len(p))
	for _, c := range img.chunks {
		cEnd := c.Off + int64(len(c.Data))
		if c.Off >= end || cEnd <= off {
			continue
		}
		from, to := max(c.Off, off), min(cEnd, end)
		copy(p[from-off:to-off], c.Data[from-c.Off:to-c.Off])
	}
	return len(p), err
}

// Bytes returns the whole image.
func (img *Image) Bytes() []byte {
	b := make([]byte, img.size)
	img.ReadAt(b, 0)
	return b
}

// Encode writes chunks as a sparse input of an image of size bytes
// (rounded up to Unit), splitting chunks longer than a length field holds.
func Encode(size int64, chunks []Chunk) []byte { return encode(Unit, size, chunks) }

// Pack returns the sparse input, size in bytes, of file: its non-zero
// bytes. It panics on a file of 4 GiB or more, which no fuzz input is.
func Pack(file []byte) []byte {
	if int64(len(file)) > 1<<32-1 {
		panic("fuzzimage: file too large for a fuzz input")
	}
	return encode(1, int64(len(file)), NonZero(0, file))
}

func encode(unit, size int64, chunks []Chunk) []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32((size+unit-1)/unit))
	for _, c := range chunks {
		for len(c.Data) > 0 {
			n := min(len(c.Data), 0xFFFF)
			out = binary.LittleEndian.AppendUint32(out, uint32(c.Off))
			out = binary.LittleEndian.AppendUint16(out, uint16(n))
			out = append(out, c.Data[:n]...)
			c.Data, c.Off = c.Data[n:], c.Off+int64(n)
		}
	}
	return out
}

// NonZero returns the non-zero stretches of b, which lies at image offset
// off, merging stretches fewer than 16 zeros apart (a chunk header costs
// six bytes).
func NonZero(off int64, b []byte) []Chunk {
	var out []Chunk
	for i := 0; i < len(b); {
		if b[i] == 0 {
			i++
			continue
		}
		j, zeros := i, 0
		for k := i; k < len(b) && zeros < 16; k++ {
			if b[k] == 0 {
				zeros++
			} else {
				zeros, j = 0, k+1
			}
		}
		out = append(out, Chunk{off + int64(i), b[i:j]})
		i = j
	}
	return out
}

// Sparse returns the sparse input of a whole image: its non-zero bytes.
func Sparse(img []byte) []byte {
	return Encode(int64(len(img)), NonZero(0, img))
}

const corpusHeader = "go test fuzz v1\n"

// FormatCorpusFile returns the content of a Go fuzz corpus file holding
// one []byte argument.
func FormatCorpusFile(data []byte) []byte {
	return []byte(corpusHeader + "[]byte(" + strconv.Quote(string(data)) + ")\n")
}

// ParseCorpusFile returns the []byte argument of a Go fuzz corpus file
// of one argument.
func ParseCorpusFile(raw []byte) ([]byte, error) {
	body, ok := strings.CutPrefix(string(raw), corpusHeader)
	body = strings.TrimSpace(body)
	if !ok || !strings.HasPrefix(body, "[]byte(") || !strings.HasSuffix(body, ")") {
		return nil, errors.New("fuzzimage: not a corpus file of one []byte")
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(body, "[]byte("), ")"))
	if err != nil {
		return nil, fmt.Errorf("fuzzimage: corpus file: %w", err)
	}
	return []byte(s), nil
}

// ReadCorpusFile reads the []byte argument of the corpus file at path.
func ReadCorpusFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, err := ParseCorpusFile(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// WriteCorpusFile writes data as the corpus file at path.
func WriteCorpusFile(path string, data []byte) error {
	return os.WriteFile(path, FormatCorpusFile(data), 0o644)
}

// ReadOffsets returns where a fuzz target reads a disk in reads of step
// bytes: its start, tail (the offset of its last read), and the start of
// every step of ranges (the data an image says it holds) until budget
// bytes are planned, so that a disk claiming terabytes costs little.
func ReadOffsets(tail int64, ranges []extent.Extent, step, budget int64) []int64 {
	offsets := []int64{0, max(0, tail)}
	for _, r := range ranges {
		for off := r.Off; off < r.End() && budget > 0; off += step {
			offsets = append(offsets, off)
			budget -= step
		}
	}
	return offsets
}
