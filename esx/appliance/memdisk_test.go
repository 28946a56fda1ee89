package appliance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Test helpers shared by the package's internal and external tests (the
// external ones reach them as appliance.MemDisk and so on).

// PatternByte is the byte at off of a deterministic content that differs
// for every seed and every sector.
func PatternByte(seed byte, off int64) byte {
	s := off >> 9
	return byte(s*131+s>>8*17) ^ byte(off*7) ^ seed*29
}

// Pattern is an io.ReaderAt of PatternByte's content, of any size.
type Pattern struct{ Seed byte }

func (p Pattern) ReadAt(b []byte, off int64) (int, error) {
	for i := range b {
		b[i] = PatternByte(p.Seed, off+int64(i))
	}
	return len(b), nil
}

const memChunk = 64 << 10

// MemDisk is an in-memory Disk, stored in chunks allocated when first
// touched, so that tests can use disks of terabytes. A never-written byte
// reads as Fill's (zero when Fill is nil).
type MemDisk struct {
	mu     sync.Mutex
	size   int64
	fill   func(off int64) byte
	chunks map[int64][]byte

	// Lose makes writes succeed without storing anything.
	Lose bool
	// WriteErr makes writes fail.
	WriteErr error
	// OnWrite runs before each write.
	OnWrite func()

	writes, syncs int
	unit          int
	hasUnit       bool
	ctrl          int
	hasCtrl       bool
}

// NewMemDisk returns a disk of size bytes whose content starts as fill's.
func NewMemDisk(size int64, fill func(off int64) byte) *MemDisk {
	return &MemDisk{size: size, fill: fill, chunks: make(map[int64][]byte)}
}

// NewPatternDisk returns a disk with Pattern{seed}'s content.
func NewPatternDisk(size int64, seed byte) *MemDisk {
	return NewMemDisk(size, func(off int64) byte { return PatternByte(seed, off) })
}

func (d *MemDisk) chunk(i int64) []byte {
	c, ok := d.chunks[i]
	if !ok {
		c = make([]byte, min(memChunk, d.size-i*memChunk))
		if d.fill != nil {
			for j := range c {
				c[j] = d.fill(i*memChunk + int64(j))
			}
		}
		d.chunks[i] = c
	}
	return c
}

// copyAt copies between b and the disk at off, which must be inside.
func (d *MemDisk) copyAt(b []byte, off int64, write bool) {
	for len(b) > 0 {
		c := d.chunk(off / memChunk)[off%memChunk:]
		var n int
		if write {
			n = copy(c, b)
		} else {
			n = copy(b, c)
		}
		b, off = b[n:], off+int64(n)
	}
}

func (d *MemDisk) ReadAt(b []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < 0 {
		return 0, errors.New("memdisk: negative offset")
	}
	if off >= d.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), d.size-off))
	d.copyAt(b[:n], off, false)
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (d *MemDisk) WriteAt(b []byte, off int64) (int, error) {
	if d.OnWrite != nil {
		d.OnWrite()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes++
	if d.WriteErr != nil {
		return 0, d.WriteErr
	}
	if off < 0 || off > d.size || int64(len(b)) > d.size-off {
		return 0, fmt.Errorf("memdisk: write %d+%d outside %d bytes", off, len(b), d.size)
	}
	if !d.Lose {
		d.copyAt(b, off, true)
	}
	return len(b), nil
}

func (d *MemDisk) Size() int64 { return d.size }

// AtUnit makes the disk report SCSI unit u (Addressed) and returns it.
func (d *MemDisk) AtUnit(u int) *MemDisk {
	d.unit, d.hasUnit = u, true
	return d
}

// Unit is the SCSI unit AtUnit set (Addressed).
func (d *MemDisk) Unit() (int, bool) { return d.unit, d.hasUnit }

// OnController makes the disk report controller c (Controlled) and
// returns it.
func (d *MemDisk) OnController(c int) *MemDisk {
	d.ctrl, d.hasCtrl = c, true
	return d
}

// Controller is the controller OnController set (Controlled).
func (d *MemDisk) Controller() (int, bool) { return d.ctrl, d.hasCtrl }

func (d *MemDisk) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncs++
	return nil
}

// Writes is the number of WriteAt calls so far.
func (d *MemDisk) Writes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes
}

// Syncs is the number of Sync calls so far.
func (d *MemDisk) Syncs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.syncs
}

// Bytes returns n bytes of the disk at off.
func (d *MemDisk) Bytes(off, n int64) []byte {
	b := make([]byte, n)
	if _, err := d.ReadAt(b, off); err != nil {
		panic(err)
	}
	return b
}

// Equal tells whether the disk's bytes in [off, off+n) are want's.
func (d *MemDisk) Equal(off int64, want []byte) bool {
	return bytes.Equal(d.Bytes(off, int64(len(want))), want)
}
