package aipimage

import (
	"errors"
	"fmt"
)

// Conditions a caller acts on. Every error returned by this package that
// concerns a file is a *FileError or a *ChainError and matches one of these
// with errors.Is.
var (
	// ErrIncomplete: the file ends before its trailer, or its header is not
	// written yet: typically a copy still in progress. Try again later.
	ErrIncomplete = errors.New("aipimage: image file incomplete")
	// ErrCorrupt: a checksum or a structural check failed in a complete file.
	ErrCorrupt = errors.New("aipimage: image file corrupt")
	// ErrNotImage: the file does not start with the image magic.
	ErrNotImage = errors.New("aipimage: not an image file")
	// ErrUnsupported: a valid file uses a version or feature this reader lacks.
	ErrUnsupported = errors.New("aipimage: unsupported image feature")
	// ErrPassphraseRequired: the file is encrypted and no passphrase was given.
	ErrPassphraseRequired = errors.New("aipimage: image encrypted, passphrase required")
	// ErrWrongPassphrase: the passphrase does not unlock the file.
	ErrWrongPassphrase = errors.New("aipimage: wrong passphrase")

	// ErrNoFullImage: no complete full image was found.
	ErrNoFullImage = errors.New("aipimage: no full image in set")
	// ErrMissingParent: a point's parent is not among the files.
	ErrMissingParent = errors.New("aipimage: parent point missing")
	// ErrForkedChain: two points claim the same parent, or one point is
	// present twice.
	ErrForkedChain = errors.New("aipimage: forked chain")
	// ErrWrongSet: a file belongs to another image set: another set id,
	// or other key derivation parameters than the set's other files.
	ErrWrongSet = errors.New("aipimage: file belongs to another set")
	// ErrSequenceGap: a point's sequence number does not follow its parent's.
	ErrSequenceGap = errors.New("aipimage: gap in sequence numbers")
	// ErrDiskMismatch: a point describes other disks than its parent.
	ErrDiskMismatch = errors.New("aipimage: disks differ from parent point")
	// ErrDiskResized: a disk's size differs from the parent point's and
	// the writer was not told that the disk was resized. The error is a
	// *ResizeError.
	ErrDiskResized = errors.New("aipimage: disk size differs from the parent point's")
	// ErrNotInSet: a file or point index names no usable point of the set:
	// the file is not among the set's files or is still pending, or the
	// index is out of range.
	ErrNotInSet = errors.New("aipimage: not a usable point of the set")

	// ErrInvalidInput: the caller's arguments are not usable (writer side).
	ErrInvalidInput = errors.New("aipimage: invalid input")
)

// FileError reports a problem in one image file.
type FileError struct {
	File string
	Err  error
}

func (e *FileError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// ChainError reports a problem in how the files of a set link together.
// Err is one of the chain sentinels (ErrMissingParent, ErrForkedChain, …).
type ChainError struct {
	Err    error
	File   string
	Detail string
}

func (e *ChainError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("%v: %s", e.Err, e.Detail)
	}
	return fmt.Sprintf("%v: %s: %s", e.Err, e.File, e.Detail)
}
func (e *ChainError) Unwrap() error { return e.Err }

// ResizeError reports a disk whose size at the new point (New) is not its
// size at the parent point (Old). Writing on regardless would drop the
// data past the old end, or fail on reading it: set WriterOptions.Resized
// when the disk really was grown or shrunk.
type ResizeError struct {
	Disk     int
	Old, New int64
}

func (e *ResizeError) Error() string {
	return fmt.Sprintf("%v: disk %d has %d bytes, %d at the parent point", ErrDiskResized, e.Disk, e.New, e.Old)
}
func (e *ResizeError) Unwrap() error { return ErrDiskResized }

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func incompletef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrIncomplete}, args...)...)
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidInput}, args...)...)
}
