package esx

import (
	"context"

	"github.com/vmware/govmomi/object"
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
