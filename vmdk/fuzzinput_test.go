package vmdk

import (
	"errors"
	"io"
	"io/fs"
	"testing"

	"github.com/standbykit/standbykit/internal/fuzzimage"
)

// Inputs of FuzzSparse, FuzzCOWD and FuzzSparseFile are packed files
// (internal/fuzzimage: the length and the runs of non-zero bytes): these
// files are mostly zeros (a COWD header is 2 KiB for 32 bytes of fields, a
// grain table 16 KiB of mostly empty entries, a grain 64 KiB), which the
// fuzzer would otherwise carry, mutate and minimize at every execution.

// maxFuzzFile bounds the file an input unpacks to: the largest seed is
// 92 KiB, and every execution allocates and copies up to this much.
const maxFuzzFile = 256 << 10

func packFile(file []byte) []byte { return fuzzimage.Pack(file) }
func unpackFile(in []byte) []byte { return fuzzimage.Unpack(in, maxFuzzFile) }

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
	offsets := fuzzimage.ReadOffsets(c.Size()-int64(len(buf)), leaf, int64(len(buf)), fuzzReadBudget)
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
