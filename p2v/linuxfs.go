package p2v

import (
	"io"

	"github.com/standbykit/standbykit/p2v/ext4"
	"github.com/standbykit/standbykit/p2v/xfs"
)

// fileSystem is what Linux inspection needs of a file system.
type fileSystem interface {
	UUID() string
	ReadFile(path string) ([]byte, error)
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
		return ext4View{fs}, true
	}
	if fs, err := xfs.Open(r, size); err == nil {
		return xfsView{fs}, true
	}
	return nil, false
}

type ext4View struct{ *ext4.FS }

func (v ext4View) List(dir string) ([]string, error) {
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

func (v ext4View) Rewrite(path string, content []byte) ([]fsPatch, error) {
	ps, err := v.RewriteFile(path, content)
	out := make([]fsPatch, len(ps))
	for i, p := range ps {
		out[i] = fsPatch{p.Offset, p.Data}
	}
	return out, err
}
