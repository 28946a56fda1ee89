package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"strings"
)

// CPIO writes a cpio archive in the "newc" format (magic 070701), the
// format the kernel unpacks as an initramfs: a 110-byte header of ASCII
// hex fields, the NUL-terminated name, padding to 4 bytes, the data,
// padding to 4 bytes; a TRAILER!!! record ends the archive.
//
// Names are stored without a leading "/". The parent directories of each
// entry are written first when they are not already (mode 0755), since
// the kernel creates an entry only inside an existing directory. Every
// entry gets its own inode number, owner root, and the same modification
// time (MTime), so an archive depends only on what is written into it.
type CPIO struct {
	// MTime is the modification time stored in every header (seconds
	// since the epoch); set it before the first entry.
	MTime int64

	w     *bufio.Writer
	ino   uint32
	names map[string]bool // every name written
	dirs  map[string]bool // directories written
	err   error
	done  bool
}

// NewCPIO returns a writer of a newc archive to w.
func NewCPIO(w io.Writer) *CPIO {
	return &CPIO{w: bufio.NewWriterSize(w, 64<<10), names: map[string]bool{}, dirs: map[string]bool{"": true}}
}

// File types of the mode field.
const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioChar    = 0o020000
	cpioBlock   = 0o060000
)

var errCPIOClosed = errors.New("image: cpio archive already closed")

// cleanName checks an entry name and returns it without a leading "/".
func cleanName(name string) (string, error) {
	n := strings.TrimPrefix(name, "/")
	if n == "" || path.Clean(n) != n || n == "." || n == ".." || strings.HasPrefix(n, "../") || strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("image: bad cpio entry name %q", name)
	}
	return n, nil
}

// Dir adds a directory with permissions perm (and its parents).
func (c *CPIO) Dir(name string, perm fs.FileMode) error {
	n, err := cleanName(name)
	if err != nil {
		return c.fail(err)
	}
	if c.dirs[n] {
		return c.err
	}
	if err := c.parents(n); err != nil {
		return err
	}
	c.dirs[n] = true
	return c.entry(n, cpioDir|uint32(perm.Perm()), 2, 0, 0, nil)
}

// File adds a regular file holding data, with permissions perm.
func (c *CPIO) File(name string, perm fs.FileMode, data []byte) error {
	if int64(len(data)) > math.MaxUint32 {
		return c.fail(fmt.Errorf("image: cpio file %s is larger than 4 GiB", name))
	}
	return c.add(name, cpioFile|uint32(perm.Perm()), 0, 0, data)
}

// Symlink adds a symbolic link to target.
func (c *CPIO) Symlink(name, target string) error {
	if target == "" {
		return c.fail(fmt.Errorf("image: cpio symlink %s has no target", name))
	}
	return c.add(name, cpioSymlink|0o777, 0, 0, []byte(target))
}

// CharDevice adds a character device node (such as dev/console, 5:1).
func (c *CPIO) CharDevice(name string, perm fs.FileMode, major, minor uint32) error {
	return c.add(name, cpioChar|uint32(perm.Perm()), major, minor, nil)
}

// BlockDevice adds a block device node.
func (c *CPIO) BlockDevice(name string, perm fs.FileMode, major, minor uint32) error {
	return c.add(name, cpioBlock|uint32(perm.Perm()), major, minor, nil)
}

func (c *CPIO) add(name string, mode, major, minor uint32, data []byte) error {
	n, err := cleanName(name)
	if err != nil {
		return c.fail(err)
	}
	if err := c.parents(n); err != nil {
		return err
	}
	return c.entry(n, mode, 1, major, minor, data)
}

// parents writes the missing parent directories of n.
func (c *CPIO) parents(n string) error {
	dir := path.Dir(n)
	if dir == "." || c.dirs[dir] {
		return c.err
	}
	return c.Dir(dir, 0o755)
}

func (c *CPIO) fail(err error) error {
	if c.err == nil {
		c.err = err
	}
	return c.err
}

// entry writes one header, name and data.
func (c *CPIO) entry(name string, mode, nlink, rmajor, rminor uint32, data []byte) error {
	if c.err != nil {
		return c.err
	}
	if c.done {
		return c.fail(errCPIOClosed)
	}
	if name != "TRAILER!!!" {
		if c.names[name] {
			return c.fail(fmt.Errorf("image: cpio entry %s written twice", name))
		}
		c.names[name] = true
		c.ino++
	}
	ino := c.ino
	if name == "TRAILER!!!" {
		ino = 0
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, uint32(c.MTime), uint32(len(data)), 0, 0, rmajor, rminor, len(name)+1, 0)
	if _, err := c.w.WriteString(hdr); err != nil {
		return c.fail(err)
	}
	if _, err := c.w.WriteString(name); err != nil {
		return c.fail(err)
	}
	// The NUL ending the name, then padding of header+name to 4 bytes.
	if err := c.zeros(1 + pad4(len(hdr)+len(name)+1)); err != nil {
		return err
	}
	if _, err := c.w.Write(data); err != nil {
		return c.fail(err)
	}
	return c.zeros(pad4(len(data)))
}

func pad4(n int) int { return (4 - n%4) % 4 }

func (c *CPIO) zeros(n int) error {
	var z [4]byte
	if _, err := c.w.Write(z[:n]); err != nil {
		return c.fail(err)
	}
	return nil
}

// Close writes the trailer and flushes; it does not close the underlying
// writer.
func (c *CPIO) Close() error {
	if c.done {
		return c.err
	}
	if err := c.entry("TRAILER!!!", 0, 1, 0, 0, nil); err != nil {
		return err
	}
	c.done = true
	if err := c.w.Flush(); err != nil {
		return c.fail(err)
	}
	return nil
}
