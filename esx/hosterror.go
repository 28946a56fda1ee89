package esx

import (
	"context"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/internal/hosttext"
)

// maxHostError bounds the text kept of an error a host reports for a
// task: the host writes it (a fault's localized message, perhaps a guest's
// or another product's words), and it reaches logs, the manager's state
// and terminals. errors.Is and fault.Is still see the fault.
const maxHostError = 1024

// waitTask waits for task to end, its error's text bounded.
func waitTask(ctx context.Context, task *object.Task) error {
	return hosttext.Wrap(task.Wait(ctx), maxHostError)
}

// taskResult waits for task to end and returns its info, its error's
// text bounded.
func taskResult(ctx context.Context, task *object.Task) (*types.TaskInfo, error) {
	info, err := task.WaitForResult(ctx)
	return info, hosttext.Wrap(err, maxHostError)
}

// clipFaults is a soap.RoundTripper that bounds, in place, the text of
// the SOAP faults a host answers calls with (faults of calls that are not
// tasks: a refused reconfiguration, a failed lease). The error govmomi
// makes of a fault reads that text when printed, and govmomi and callers
// check it by its type, which wrapping it would hide: so the fault itself
// is clipped, and the error stays what govmomi made.
type clipFaults struct{ next soap.RoundTripper }

// maxFaultCode bounds a fault's code (ServerFaultCode on ESXi).
const maxFaultCode = 64

func (c clipFaults) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	err := c.next.RoundTrip(ctx, req, res)
	if f := res.Fault(); f != nil {
		f.Code = hosttext.Clip(f.Code, maxFaultCode)
		f.String = hosttext.Clip(f.String, maxHostError)
	}
	return err
}
