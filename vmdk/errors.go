package vmdk

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt reports bytes that do not follow the format: a bad magic,
	// an offset outside the file, a grain that does not decompress.
	ErrCorrupt = errors.New("vmdk: corrupt")
	// ErrUnsupported reports a valid file that this package does not
	// handle (an extent type, a flag, SEsparse).
	ErrUnsupported = errors.New("vmdk: unsupported")
	// ErrTooLarge reports a disk beyond a format's limit, e.g. a vmfsSparse
	// delta of a disk of 2 TiB or more.
	ErrTooLarge = errors.New("vmdk: disk too large for the format")
	// ErrCIDMismatch reports a child whose parentCID is not its parent's
	// CID: the parent changed after the child was made. VMware refuses to
	// open such a chain, and so does OpenChain.
	ErrCIDMismatch = errors.New("vmdk: parent content ID does not match")
	// ErrInvalidInput reports arguments that cannot describe a disk.
	ErrInvalidInput = errors.New("vmdk: invalid input")
)

// FileError names the file of a chain that an error is about.
type FileError struct {
	File string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s: %v", e.File, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
