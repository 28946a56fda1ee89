package bootpoint

import (
	"context"
	"sync"
)

// Transfer steps: the long parts of making and checking a boot point,
// which report how many bytes they have done. A Hypervisor reports its
// own ("stream", "upload", "payload") through the context it is given
// (see Progress); Standby reports "verify".
const (
	// StepStream: a disk's data read from the image point and encoded
	// for the host (a base disk's streamOptimized VMDK).
	StepStream = "stream"
	// StepUpload: encoded data sent to the host (an NFC import, a
	// datastore upload).
	StepUpload = "upload"
	// StepPayload: a boot point's changes written into the payload that
	// carries them to the host.
	StepPayload = "payload"
	// StepVerify: a boot point's disk read back and compared with its
	// image point and patches.
	StepVerify = "verify"
)

// Transfer is how far one transfer step has come.
type Transfer struct {
	Step string
	// Disk is the disk the bytes belong to; -1 for data that carries
	// several disks' changes (a payload).
	Disk  int
	Done  int64
	Total int64
}

type progressKey struct{}

// WithProgress returns a context whose long transfers report to report:
// Standby passes such a context to its Hypervisor, so that an
// implementation can tell how far a base import or a payload has come
// without the interface growing a method.
func WithProgress(ctx context.Context, report func(Transfer)) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

// ProgressOf returns the report function ctx carries, or nil.
func ProgressOf(ctx context.Context) func(Transfer) {
	report, _ := ctx.Value(progressKey{}).(func(Transfer))
	return report
}

// Granularity of transfer reports: at most about maxReports per
// transfer, but never fewer bytes apart than minReportBytes, nor more
// than maxReportBytes (a large disk still gives a sign of life every
// few seconds).
const (
	maxReports     = 200
	minReportBytes = 1 << 20
	maxReportBytes = 64 << 20
)

// Progress returns the function through which a transfer of step on
// disk reports its bytes done of total to the report function ctx
// carries (a no-op without one). Callers may call it as often as they
// like, from any goroutine; it passes on the first call, the last one
// (done == total), and calls at least a report granule apart (1/200 of
// the total, between 1 MiB and 64 MiB), so that a short transfer reports
// a few times and a long one steadily, whatever the caller's chunk size.
func Progress(ctx context.Context, step string, disk int) func(done, total int64) {
	report := ProgressOf(ctx)
	if report == nil {
		return func(int64, int64) {}
	}
	var mu sync.Mutex
	started, ended := false, false
	var next int64
	return func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		last := done >= total
		if ended || started && done < next && !last {
			return
		}
		started, ended = true, last
		next = done + min(max(total/maxReports, minReportBytes), maxReportBytes)
		report(Transfer{Step: step, Disk: disk, Done: done, Total: total})
	}
}
