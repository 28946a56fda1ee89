package bootpoint

import "context"

// GuestStatus is what a hypervisor can tell of a running guest without
// credentials in it.
type GuestStatus struct {
	// ToolsRunning: the guest's VMware Tools (or the hypervisor's guest
	// agent) are running.
	ToolsRunning bool
	// Heartbeat is the agent's heartbeat as the hypervisor rates it:
	// "green", "yellow", "red", or "gray" (no agent, or not yet).
	Heartbeat string
	// GuestID and GuestFullName are the OS the agent reports, if any.
	GuestID, GuestFullName string
}

// GuestObserver is what an automatic boot check needs beyond TestBooter:
// the guest's heartbeat and a screenshot of its console.
type GuestObserver interface {
	GuestStatus(ctx context.Context, vm VM) (GuestStatus, error)
	// Screenshot returns the VM's console as a PNG image.
	Screenshot(ctx context.Context, vm VM) ([]byte, error)
}
