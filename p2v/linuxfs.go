package p2v

import (
	"fmt"
	"io"

	"github.com/standbykit/standbykit/p2v/ext4"
	"github.com/standbykit/standbykit/p2v/xfs"
)

// fileSystem is what Linux inspection needs of a file system.
type fileSystem interface {
	UUID() string
	ReadFile(path string) ([]byte, error)
	// OpenFile returns a reader of the regular file at path that reads it
	// in place, for files too large to hold (an initramfs).
	OpenFile(path string) (io.Reader, error)
	List(dir string) ([]string, error)
	// Rewrite returns the patches (offsets within the file system) that
	// give path new content inside its own blocks, or why it cannot.
	Rewrite(path string, content []byte) ([]fsPatch, error)
}

type fsPatch struct {
	Offset int64
	Data   []byte
}

// openFileSystem opens the Linux file systems inspection reads.
func openFileSystem(r io.ReaderAt, size int64) (fileSystem, bool) {
	if fs, err := ext4.Open(r, size); err == nil {
		return ext4View{fs, r}, true
	}
	if fs, err := xfs.Open(r, size); err == nil {
		return xfsView{fs, r}, true
	}
	return nil, false
}

type ext4View struct {
	*ext4.FS
	dev io.ReaderAt
}

func (v ext4View) OpenFile(path string) (io.Reader, error) {
	rs, err := v.FileRanges(path)
	if err != nil {
		return nil, err
	}
	return readRanges(v.dev, rs)
}

func (v ext4View) List(dir string) ([]string, error) {
	entries, err := v.ReadDir(dir)
	return entryNames(entries, err, func(e ext4.DirEntry) string { return e.Name })
}

// entryNames is the names of a directory's entries, as a file system's
// ReadDir returned them.
func entryNames[E any](entries []E, err error, name func(E) string) ([]string, error) {
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = name(e)
	}
	return names, nil
}

func (v ext4View) Rewrite(path string, content []byte) ([]fsPatch, error) {
	ps, err := v.RewriteFile(path, content)
	out := make([]fsPatch, len(ps))
	for i, p := range ps {
		out[i] = fsPatch{p.Offset, p.Data}
	}
	return out, err
}

// fileRange is a run of a file's bytes in its file system, as ext4.Range
// and xfs.Range are: at Offset, or zeros.
type fileRange struct {
	Offset, Length int64
	Zero           bool
}

// readRanges returns a reader of the file whose ranges on dev are rs.
func readRanges[R ext4.Range | xfs.Range](dev io.ReaderAt, rs []R) (io.Reader, error) {
	out := make([]fileRange, len(rs))
	for i, r := range rs {
		out[i] = fileRange(r)
		if out[i].Length < 0 || !out[i].Zero && out[i].Offset < 0 {
			return nil, fmt.Errorf("a file range of %d bytes at %d", out[i].Length, out[i].Offset)
		}
	}
	return &rangesReader{dev: dev, ranges: out}, nil
}

// rangesReader reads a file from its ranges, in order.
type rangesReader struct {
	dev    io.ReaderAt
	ranges []fileRange
	pos    int64 // within ranges[0]
}

func (r *rangesReader) Read(p []byte) (int, error) {
	for len(r.ranges) > 0 && r.pos == r.ranges[0].Length {
		r.ranges, r.pos = r.ranges[1:], 0
	}
	if len(r.ranges) == 0 {
		return 0, io.EOF
	}
	cur := r.ranges[0]
	p = p[:min(int64(len(p)), cur.Length-r.pos)]
	if cur.Zero {
		clear(p)
		r.pos += int64(len(p))
		return len(p), nil
	}
	n, err := r.dev.ReadAt(p, cur.Offset+r.pos)
	r.pos += int64(n)
	if err == io.EOF && n == len(p) {
		err = nil
	} else if err == io.EOF {
		err = io.ErrUnexpectedEOF // the range lies past the device's end
	}
	return n, err
}
