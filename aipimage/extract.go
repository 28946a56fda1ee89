package aipimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// sparseGrain is the unit ExtractSparse leaves as a hole when it is all
// zero: the block size of common file systems.
const sparseGrain = 4096

// ExtractSparse copies disk (typically Point.Disk(d)) to a new raw file at
// path and returns the bytes it holds, disk.Size(). Every aligned 4 KiB
// that is all zero is left as a hole, so on a file system with sparse
// files a mostly empty disk takes little space; the file reads the same
// either way.
//
// The data goes to path+".partial" and is synced and renamed to path only
// when complete: on any error, a cancelled ctx included, the partial file
// is removed and path is left as it was. An existing regular file at path
// is replaced; anything else there (a directory, a device, a symbolic link) is
// refused with
// ErrInvalidInput, as is a path+".partial" left by another extraction.
func ExtractSparse(ctx context.Context, path string, disk *io.SectionReader) (int64, error) {
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		return 0, invalidf("%s exists and is not a regular file", path)
	}
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return 0, invalidf("%s exists: another extraction is at work on %s, or one crashed (then remove it)", tmp, path)
	}
	if err != nil {
		return 0, err
	}
	err = writeSparse(ctx, f, disk)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	syncDir(filepath.Dir(path))
	return disk.Size(), nil
}

// writeSparse writes disk to the empty file f, skipping the grains that
// are all zero, and sets its size.
func writeSparse(ctx context.Context, f *os.File, disk *io.SectionReader) error {
	size := disk.Size()
	buf := make([]byte, 4<<20) // large reads let a Point decode blocks in parallel
	zero := make([]byte, sparseGrain)
	isZero := func(p []byte, i int) bool {
		end := min(i+sparseGrain, len(p))
		return bytes.Equal(p[i:end], zero[:end-i])
	}
	for off := int64(0); off < size; off += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := buf[:min(int64(len(buf)), size-off)]
		if n, err := disk.ReadAt(p, off); n < len(p) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading the disk at %d: %w", off+int64(n), err)
		}
		// Write each run of grains that are not all zero in one call.
		for i := 0; i < len(p); {
			for i < len(p) && isZero(p, i) {
				i += sparseGrain
			}
			j := i
			for j < len(p) && !isZero(p, j) {
				j += sparseGrain
			}
			if j > i {
				if _, err := f.WriteAt(p[i:min(j, len(p))], off+int64(i)); err != nil {
					return err
				}
			}
			i = j
		}
	}
	return f.Truncate(size)
}
