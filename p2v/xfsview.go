package p2v

import (
	"errors"

	"github.com/standbykit/standbykit/p2v/xfs"
)

// errXFSReadOnly is why files on XFS are not fixed: this package reads
// XFS but does not write it yet.
var errXFSReadOnly = errors.New("files on XFS are read, not rewritten (XFS fixups are not done yet)")

type xfsView struct{ *xfs.FS }

func (v xfsView) List(dir string) ([]string, error) {
	entries, err := v.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	return names, nil
}

func (xfsView) Rewrite(string, []byte) ([]fsPatch, error) { return nil, errXFSReadOnly }
