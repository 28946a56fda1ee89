package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// memAlign is the alignment of the buffers direct I/O goes through
	// (a page: what every device and file system accepts).
	memAlign = 4096
	// chunk is the largest single read or write.
	chunk = 1 << 20
)

// disk is a block device (or, in tests, a regular file) opened with
// O_DIRECT, so that what Apply writes and reads back goes to the device
// and not to the page cache. Direct I/O needs the buffer, offset and
// length aligned: disk reads and writes through aligned bounce buffers,
// and turns writes that do not cover whole blocks into
// read-modify-write of those blocks. It satisfies appliance.Disk, and
// appliance.Addressed: a disk on the payload's pvscsi or mptsas adapter
// knows its SCSI unit (work sets it from sysfs: see scsiaddr.go).
type disk struct {
	f      *os.File
	path   string
	size   int64
	block  int64 // the I/O granularity of direct I/O: the logical block size
	direct bool
	device bool
	unit   int // the SCSI unit on the appliance's controller, -1 if unknown
	// controller is the SCSI host adapter's number, -1 if unknown.
	controller int

	rmw  sync.Mutex // serialises read-modify-writes of partial blocks
	bufs sync.Pool
}

// openDisk opens a disk for reading, or for reading and writing, with
// O_DIRECT where the file system supports it (a regular file on tmpfs,
// say, does not: it is then opened without).
func openDisk(path string, writable bool) (*disk, error) { return openDiskMode(path, writable, true) }

// openDiskMode is openDisk, with direct false never trying O_DIRECT.
func openDiskMode(path string, writable, direct bool) (*disk, error) {
	flags := os.O_RDONLY
	if writable {
		flags = os.O_RDWR
	}
	var f *os.File
	var err error = unix.EINVAL
	if direct {
		f, err = os.OpenFile(path, flags|unix.O_DIRECT|unix.O_CLOEXEC, 0)
		direct = err == nil
	}
	if errors.Is(err, unix.EINVAL) {
		f, err = os.OpenFile(path, flags|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, err
	}
	d := &disk{f: f, path: path, direct: direct, block: 512, unit: -1, controller: -1}
	d.bufs.New = func() any { return alignedBuf(chunk) }
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case fi.Mode()&os.ModeDevice != 0:
		d.device = true
		if n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET); err == nil && n > 0 {
			d.block = int64(n)
		}
	case fi.Mode().IsRegular():
		var st unix.Statx_t
		if unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st) == nil &&
			st.Mask&unix.STATX_DIOALIGN != 0 && st.Dio_offset_align > 0 {
			d.block = int64(st.Dio_offset_align)
		}
	default:
		f.Close()
		return nil, fmt.Errorf("%s is neither a block device nor a regular file", path)
	}
	if d.size, err = f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	// Direct I/O only where every block is whole and the block size a
	// power of two no larger than a buffer page.
	if d.direct && (d.block&(d.block-1) != 0 || d.block > memAlign || d.size%d.block != 0) {
		f.Close()
		if f, err = os.OpenFile(path, flags|unix.O_CLOEXEC, 0); err != nil {
			return nil, err
		}
		d.f, d.direct = f, false
	}
	return d, nil
}

// alignedBuf returns n bytes starting on a memAlign boundary.
func alignedBuf(n int) []byte {
	b := make([]byte, n+memAlign)
	off := (memAlign - int(uintptr(unsafe.Pointer(&b[0]))%memAlign)) % memAlign
	return b[off : off+n : off+n]
}

func (d *disk) Size() int64 { return d.size }

// Unit is the disk's SCSI unit on the appliance's controller, if known
// (appliance.Addressed).
func (d *disk) Unit() (int, bool) { return d.unit, d.unit >= 0 }

// Controller implements appliance.Controlled.
func (d *disk) Controller() (int, bool) { return d.controller, d.controller >= 0 }

func (d *disk) Close() error { return d.f.Close() }

// ReadAt reads like io.ReaderAt: fewer bytes than len(p) only at the
// disk's end, with io.EOF.
func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: read at negative offset %d", d.path, off)
	}
	if off >= d.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > d.size-off {
		p = p[:d.size-off]
	}
	var n int
	var err error
	if !d.direct {
		n, err = d.f.ReadAt(p, off)
	} else {
		n, err = d.readDirect(p, off)
	}
	if err == nil && n < want {
		err = io.EOF
	}
	return n, err
}

func (d *disk) readDirect(p []byte, off int64) (int, error) {
	buf := d.bufs.Get().([]byte)
	defer d.bufs.Put(buf)
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		start := pos &^ (d.block - 1)
		skip := int(pos - start)
		span := min(int64(skip+len(p)-n), chunk)
		span = (span + d.block - 1) &^ (d.block - 1)
		if span > chunk {
			span = chunk
		}
		if err := d.readFull(buf[:span], start); err != nil {
			return n, err
		}
		n += copy(p[n:], buf[skip:span])
	}
	return n, nil
}

// readFull reads len(b) bytes at off (aligned), all of them.
func (d *disk) readFull(b []byte, off int64) error {
	for len(b) > 0 {
		n, err := d.f.ReadAt(b, off)
		if n == 0 && err == nil {
			err = io.ErrUnexpectedEOF
		}
		if n < len(b) && err != nil {
			return fmt.Errorf("%s: read %d bytes at %d: %w", d.path, len(b), off, err)
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// WriteAt writes p at off; a write past the disk's end is an error and
// writes nothing.
func (d *disk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || int64(len(p)) > d.size-off {
		return 0, fmt.Errorf("%s: write of %d bytes at %d is outside the disk (%d bytes)", d.path, len(p), off, d.size)
	}
	if !d.direct {
		return d.f.WriteAt(p, off)
	}
	buf := d.bufs.Get().([]byte)
	defer d.bufs.Put(buf)
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		start := pos &^ (d.block - 1)
		skip := int(pos - start)
		end := min(pos+int64(len(p)-n), start+chunk)
		span := int((end - start + d.block - 1) &^ (d.block - 1))
		partial := skip != 0 || int64(span) != end-start
		if partial {
			// The first or last block is shared with bytes this write
			// must keep: read them, under the lock that every partial
			// write takes (no whole-block write can share a block).
			d.rmw.Lock()
			if err := d.readFull(buf[:span], start); err != nil {
				d.rmw.Unlock()
				return n, err
			}
		}
		c := copy(buf[skip:span], p[n:n+int(end-pos)])
		_, err := d.f.WriteAt(buf[:span], start)
		if partial {
			d.rmw.Unlock()
		}
		if err != nil {
			return n, fmt.Errorf("%s: write %d bytes at %d: %w", d.path, span, start, err)
		}
		n += c
	}
	return n, nil
}

// Sync makes the writes durable (fsync, which flushes the device's write
// cache) and, for a block device, drops its page cache (BLKFLSBUF), so
// that nothing read afterwards, direct or not, comes from memory.
func (d *disk) Sync() error {
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("%s: fsync: %w", d.path, err)
	}
	if d.device {
		if err := unix.IoctlSetInt(int(d.f.Fd()), unix.BLKFLSBUF, 0); err != nil && !errors.Is(err, unix.ENOTTY) {
			return fmt.Errorf("%s: BLKFLSBUF: %w", d.path, err)
		}
	}
	return nil
}
