package p2v

import (
	"errors"
	"io"

	"github.com/standbykit/standbykit/p2v/xfs"
)

// errXFSReadOnly is why files on XFS are not fixed: this package reads
// XFS but does not write it yet.
var errXFSReadOnly = errors.New("files on XFS are read, not rewritten (XFS fixups are not done yet)")

type xfsView struct {
	*xfs.FS
	dev io.ReaderAt
}

func (v xfsView) OpenFile(path string) (io.Reader, error) {
	rs, err := v.FileRanges(path)
	if err != nil {
		return nil, err
	}
	return readRanges(v.dev, rs)
}

func (v xfsView) List(dir string) ([]string, error) {
	entries, err := v.ReadDir(dir)
	return entryNames(entries, err, func(e xfs.DirEntry) string { return e.Name })
}

func (xfsView) Rewrite(string, []byte) ([]fsPatch, error) { return nil, errXFSReadOnly }
