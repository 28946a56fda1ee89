package main

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/standbykit/standbykit/internal/extent"
)

// dataRanges lists the ranges of f that are not holes (SEEK_DATA,
// SEEK_HOLE).
func dataRanges(f *os.File, size int64) ([]extent.Extent, error) {
	var out []extent.Extent
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return nil, err
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		out = append(out, extent.Extent{Off: d, Len: h - d})
		off = h
	}
	return out, nil
}
