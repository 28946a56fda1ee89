package vmdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"testing"
)

// Inputs of FuzzSparse, FuzzCOWD and FuzzSparseFile describe a file by
// its length and its runs of non-zero bytes, not byte for byte: these
// files are mostly zeros (a COWD header is 2 KiB for 32 bytes of fields, a
// grain table 16 KiB of mostly empty entries, a grain 64 KiB), which the
// fuzzer would otherwise carry, mutate and minimize at every execution.
// Mutating a run's offset moves a structure; mutating the length cuts or
// grows the file.
//
//	u32 file length, at most maxFuzzFile
//	runs: u32 offset, u16 length, that many bytes
//
// Runs past the file's end are cut, and an input that ends inside a run
// keeps the bytes it has.
const maxFuzzFile = 4 << 20

// unpackFile builds the file an input describes.
func unpackFile(in []byte) []byte {
	if len(in) < 4 {
		return nil
	}
	file := make([]byte, min(binary.LittleEndian.Uint32(in), maxFuzzFile))
	for in = in[4:]; len(in) >= 6; {
		off, n := int64(binary.LittleEndian.Uint32(in)), int(binary.LittleEndian.Uint16(in[4:]))
		in = in[6:]
		n = min(n, len(in))
		if off < int64(len(file)) {
			copy(file[off:], in[:n])
		}
		in = in[n:]
	}
	return file
}

// packFile describes file as unpackFile reads it: runs of non-zero bytes,
// joined across gaps of fewer than 8 zeros.
func packFile(file []byte) []byte {
	if len(file) > maxFuzzFile {
		panic("packFile: file too large for a fuzz input")
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(file)))
	for i := 0; i < len(file); {
		if file[i] == 0 {
			i++
			continue
		}
		j, zeros := i, 0
		for j < len(file) && j-i < 0xffff && zeros < 8 {
			if file[j] == 0 {
				zeros++
			} else {
				zeros = 0
			}
			j++
		}
		j -= zeros
		out = binary.LittleEndian.AppendUint32(out, uint32(i))
		out = binary.LittleEndian.AppendUint16(out, uint16(j-i))
		out = append(out, file[i:j]...)
		i = j
	}
	return out
}

func TestPackFile(t *testing.T) {
	for _, file := range [][]byte{
		nil,
		make([]byte, 1000),
		append(append(bytes.Repeat([]byte{1}, 3), make([]byte, 7)...), 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3),
		bytes.Repeat([]byte{9}, 0x1ffff),
		compactSparse(300, true, sparseSeedDesc, map[int64]byte{0: 0, 2: 4}),
	} {
		in := packFile(file)
		if got := unpackFile(in); !bytes.Equal(got, file) && !(len(file) == 0 && len(got) == 0) {
			t.Fatalf("unpackFile(packFile(%d bytes)) differs", len(file))
		}
		if len(in) > 4+len(file)+6*(len(file)/0xffff+1)*2 {
			t.Fatalf("%d bytes packed into %d", len(file), len(in))
		}
	}
	// A run that leaves the file, and one cut by the input's end.
	in := []byte{8, 0, 0, 0, 6, 0, 0, 0, 4, 0, 1, 2, 3, 4, 1, 0, 0, 0, 9, 0, 5}
	if got := unpackFile(in); !bytes.Equal(got, []byte{0, 5, 0, 0, 0, 0, 1, 2}) {
		t.Fatalf("unpackFile: %v", got)
	}
}

// fuzzReadBudget bounds what readOrError reads of a chain beyond its first
// and last 64 KiB: a hostile header may claim a disk of 512 TiB.
const fuzzReadBudget = 256 << 10

// readOrError opens a chain and reads what it holds: its allocated ranges
// at every depth, then both ends of the disk and (up to fuzzReadBudget)
// the leaf's allocated ranges. Errors must be typed, ranges sorted and
// inside the disk; nothing may panic.
func readOrError(t *testing.T, fsys fs.FS, name string) {
	c, err := OpenChain(fsys, name)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrCIDMismatch) && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("untyped error: %v", err)
		}
		return
	}
	defer c.Close()
	var leaf []Range
	for depth := range c.Links() {
		rs, err := c.Allocated(depth)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("untyped Allocated error: %v", err)
			}
			continue
		}
		var end int64
		for _, r := range rs {
			if r.Len <= 0 || r.Off < end || r.End() > c.Size() {
				t.Fatalf("Allocated(%d) returned %v for a %d-byte disk", depth, rs, c.Size())
			}
			end = r.End()
		}
		if depth == 0 {
			leaf = rs
		}
	}
	buf := make([]byte, 64<<10)
	offsets := []int64{0, max(0, c.Size()-int64(len(buf)))}
	budget := int64(fuzzReadBudget)
	for _, r := range leaf {
		for off := r.Off; off < r.End() && budget > 0; off += int64(len(buf)) {
			offsets = append(offsets, off)
			budget -= int64(len(buf))
		}
	}
	for _, off := range offsets {
		want := min(int64(len(buf)), c.Size()-off)
		n, err := c.ReadAt(buf[:want], off)
		if err != nil && err != io.EOF {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("untyped read error: %v", err)
			}
			return
		}
		if int64(n) != want {
			t.Fatalf("read %d of %d bytes at %d without an error", n, want, off)
		}
	}
}
