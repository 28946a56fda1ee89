//go:build unix

package aipimage

import (
	"os"
	"strconv"
	"syscall"
)

// mapFile maps a complete image file read-only, so block reads decode in
// place instead of copying through pread. It returns nil when mapping is not
// possible; callers then read with pread.
func mapFile(f *os.File, size int64) *mappedFile {
	if strconv.IntSize < 64 || size <= 0 {
		return nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	return &mappedFile{data: data, unmap: func() error { return syscall.Munmap(data) }}
}
