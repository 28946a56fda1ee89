package appliance

import (
	"context"
	"errors"
	"io"

	"github.com/standbykit/standbykit/internal/extent"
)

// Errors Apply and the payload reader report; each is wrapped with what
// it is about.
var (
	// ErrCorrupt reports a payload that does not follow the format (bad
	// magic, CRC mismatch, truncated, out-of-range values).
	ErrCorrupt = errors.New("appliance: corrupt payload")
	// ErrGuard reports a target disk whose current content is not what the
	// payload expects (no disk matches, or more than one).
	ErrGuard = errors.New("appliance: target disk does not match the payload's guard")
	// ErrVerify reports data that read back differently after writing.
	ErrVerify = errors.New("appliance: data read back differs from what was written")
)

// Target is one disk a payload writes to, as the host side describes it.
type Target struct {
	// Capacity is the disk's size in bytes, a multiple of 512.
	Capacity int64
	// Extents are the ranges to write: sorted, disjoint, 512-byte
	// aligned, inside Capacity.
	Extents []extent.Extent
	// Source holds the new content (read inside Extents only).
	Source io.ReaderAt
	// Base holds the disk's current content (read inside Extents only),
	// for the guard.
	Base io.ReaderAt
}

// Disk is a disk the appliance sees: a block device, or in the simulator
// a VMDK chain whose leaf takes the writes.
type Disk interface {
	io.ReaderAt
	io.WriterAt
	// Size is the disk's capacity in bytes.
	Size() int64
	// Sync makes written data durable.
	Sync() error
}

// PayloadSize is the exact number of bytes WritePayload writes for these
// targets.
func PayloadSize(targets []Target) (int64, error) { return payloadSize(targets) }

// WritePayload writes the payload for targets to w in one sequential pass
// and returns its ID (random) and the number of bytes written (always
// PayloadSize's). Memory stays bounded whatever the extents' sizes.
func WritePayload(ctx context.Context, w io.Writer, targets []Target) (id string, n int64, err error) {
	return writePayload(ctx, w, targets)
}

// Result is what Apply did.
type Result struct {
	PayloadID string
	// Targets maps each payload target to the index of the disk it was
	// written to.
	Targets      []int
	Records      int
	BytesWritten int64
}

// Apply writes the payload (size bytes read from payload) into disks, as
// described in the package documentation, reporting each step to report
// as JSON lines (nil: no report). Nothing is written unless every target
// matched exactly one disk and the whole payload is intact.
func Apply(ctx context.Context, payload io.ReaderAt, size int64, disks []Disk, report io.Writer) (Result, error) {
	return apply(ctx, payload, size, disks, report)
}

// ReportLine is one line of an Apply report.
type ReportLine struct {
	Event     string `json:"event"` // "start", "guard", "write", "verify", "done", "error"
	PayloadID string `json:"payloadId,omitempty"`
	Target    *int   `json:"target,omitempty"`
	Disk      *int   `json:"disk,omitempty"`
	Records   int    `json:"records,omitempty"`
	Bytes     int64  `json:"bytes,omitempty"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
}

// ReadReport parses an Apply report (bounded: at most maxReport bytes and
// lines as Apply writes them) and returns the result it tells for payload
// id: nil when the report ends with a successful "done" for that payload,
// an error naming the failure otherwise (including a report of another
// payload, an empty or cut report).
func ReadReport(r io.Reader, id string) error { return readReport(r, id) }
