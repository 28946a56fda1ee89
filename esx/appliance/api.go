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
	// payload expects (no disk matches, or more than one, or no disk is at
	// the target's SCSI unit).
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
	// Unit is the SCSI unit number on the appliance's controller the
	// host attaches this target at (1 to 15, never 7, the controller's
	// own; distinct targets at distinct units); 0 when unknown. Apply
	// writes the target to the disk at that unit when the disks know
	// their units (Addressed), so that two disks of equal capacity and
	// equal content over the target's ranges are told apart.
	Unit int
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

// Addressed is implemented by a Disk that knows its SCSI unit: its
// target number on the appliance's controller, where the host attached
// it (Target.Unit). ok is false when the disk does not know it (a disk
// on an AHCI or NVMe controller, say), and such a disk then counts as
// a Disk without the method.
type Addressed interface {
	Unit() (unit int, ok bool)
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
//
// A target is matched by its SCSI unit and checked by its guard: when
// the target has a unit (Target.Unit > 0) and at least one of disks
// reports one (Addressed), the target's candidates are exactly the
// disks reporting the target's unit — none is ErrGuard —, and the one
// of them with the target's capacity and guard is the target's disk
// (ErrGuard if it does not match). Otherwise — a target of unknown
// unit, or disks that know none, such as AHCI or NVMe disks — the
// candidates are all the disks of the target's capacity, and exactly
// one of them must have the target's guard.
func Apply(ctx context.Context, payload io.ReaderAt, size int64, disks []Disk, report io.Writer) (Result, error) {
	return apply(ctx, payload, size, disks, report)
}

// ReportLine is one line of an Apply report.
type ReportLine struct {
	Event     string `json:"event"` // "start", "guard", "write", "verify", "done", "error"
	PayloadID string `json:"payloadId,omitempty"`
	Target    *int   `json:"target,omitempty"`
	Disk      *int   `json:"disk,omitempty"`
	Unit      *int   `json:"unit,omitempty"` // Disk's SCSI unit, when it reports one (Addressed)
	Records   int    `json:"records,omitempty"`
	Bytes     int64  `json:"bytes,omitempty"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
}

// ReadReport parses an Apply report (bounded: at most 1 MiB, 10,000 lines,
// 8 KiB a line once the payload's report has started; noise before it,
// such as a console's, and reports of other payloads are skipped) and
// returns the result it tells for payload id: nil when the report ends
// with a successful "done" for that payload, an ErrReport naming the
// failure otherwise (including an empty or cut report).
func ReadReport(r io.Reader, id string) error { return readReport(r, id) }
