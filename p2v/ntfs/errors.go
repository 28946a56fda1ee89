package ntfs

import (
	"errors"
	"fmt"
)

// Errors returned by this package; test with errors.Is.
var (
	// ErrNotNTFS: the volume has no NTFS boot sector.
	ErrNotNTFS = errors.New("ntfs: not an NTFS volume")
	// ErrBitLocker: the volume is BitLocker-encrypted ("-FVE-FS-").
	ErrBitLocker = errors.New("ntfs: BitLocker-encrypted volume")
	// ErrCorrupt: a structure is inconsistent, out of bounds or fails
	// its update-sequence check.
	ErrCorrupt = errors.New("ntfs: corrupt volume")
	// ErrUnsupported: a valid feature this package does not handle
	// (compressed or encrypted data, Ranges of sparse data, …).
	ErrUnsupported = errors.New("ntfs: unsupported")
	// ErrNotFound: no such file or directory.
	ErrNotFound = errors.New("ntfs: not found")
)

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}
