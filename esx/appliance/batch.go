package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Controlled is implemented by a Disk that knows which of the appliance's
// controllers it is attached to (an identity that only needs to tell the
// controllers of one run apart: the SCSI host number inside the
// appliance, a device key in the simulator). ok is false when it does not
// know.
type Controlled interface {
	Controller() (id int, ok bool)
}

// Payload is a payload disk of a batch: one run of the appliance that
// writes several boot points, of several standby VMs, at once.
type Payload struct {
	Data io.ReaderAt
	Size int64
	// Controller is the controller the payload is attached to, with its
	// targets (-1: unknown).
	Controller int
}

// ApplyBatch applies several payloads, one after the other, each to the
// disks on its own controller: the host gives every payload of a run a
// controller of its own, the payload at unit 0 and its targets at the
// units the payload names, so that the units of two payloads never meet.
// With one payload, every disk is a candidate, as with Apply; with
// several, a payload whose controller is unknown, or shared with another
// payload, gets no disk and fails its guard. The reports follow each
// other on report (ReadReport picks its payload's). A failed payload does
// not stop the others: the results say which were written, and the error
// joins every payload's.
//
// Result.Targets indexes disks, the whole slice.
func ApplyBatch(ctx context.Context, payloads []Payload, disks []Disk, report io.Writer) ([]Result, error) {
	shared := map[int]int{}
	for _, p := range payloads {
		if p.Controller >= 0 {
			shared[p.Controller]++
		}
	}
	results := make([]Result, len(payloads))
	var errs []error
	for i, p := range payloads {
		index := make([]int, 0, len(disks)) // the payload's disks, as indexes into disks
		for d, disk := range disks {
			if len(payloads) == 1 || onController(disk, p.Controller, shared) {
				index = append(index, d)
			}
		}
		own := make([]Disk, len(index))
		for j, d := range index {
			own[j] = disks[d]
		}
		res, err := Apply(ctx, p.Data, p.Size, own, report)
		for t, j := range res.Targets {
			res.Targets[t] = index[j]
		}
		results[i] = res
		if err != nil {
			errs = append(errs, fmt.Errorf("payload %d of %d (%s): %w", i+1, len(payloads), controllerName(p.Controller), err))
		}
	}
	return results, errors.Join(errs...)
}

// onController tells whether disk is on controller, a controller that
// only one payload has.
func onController(disk Disk, controller int, shared map[int]int) bool {
	if controller < 0 || shared[controller] != 1 {
		return false
	}
	c, ok := disk.(Controlled)
	if !ok {
		return false
	}
	id, ok := c.Controller()
	return ok && id == controller
}

func controllerName(c int) string {
	if c < 0 {
		return "unknown controller"
	}
	return fmt.Sprintf("controller %d", c)
}
