package esx

import (
	"context"
	"fmt"
	"io"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/internal/hosttext"
)

var _ bootpoint.GuestObserver = (*Host)(nil)

// maxGuestText bounds what is kept of a text the host reports about a
// guest: the guest writes it.
const maxGuestText = 256

// maxScreenshot bounds a console screenshot's PNG: a 2560×1600 console
// in 24-bit colour is 12 MB uncompressed.
const maxScreenshot = 16 << 20

func clip(s string) string { return hosttext.Clip(s, maxGuestText) }

// GuestStatus implements bootpoint.GuestObserver, from the VM's guest
// properties (VMware Tools' running state and the OS it reports) and its
// guest heartbeat status.
func (h *Host) GuestStatus(ctx context.Context, vm bootpoint.VM) (bootpoint.GuestStatus, error) {
	s, err := h.load(ctx, vm)
	if err != nil {
		return bootpoint.GuestStatus{}, err
	}
	var props mo.VirtualMachine
	if err := s.obj.Properties(ctx, s.obj.Reference(), []string{"guest", "guestHeartbeatStatus"}, &props); err != nil {
		return bootpoint.GuestStatus{}, fmt.Errorf("esx: VM %s: reading its guest status: %w", s.mo.Name, err)
	}
	st := bootpoint.GuestStatus{Heartbeat: clip(string(props.GuestHeartbeatStatus))}
	if g := props.Guest; g != nil {
		st.ToolsRunning = g.ToolsRunningStatus == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
		st.GuestID, st.GuestFullName = clip(g.GuestId), clip(g.GuestFullName)
	}
	return st, nil
}

// Screenshot implements bootpoint.GuestObserver: the host writes the
// console to a PNG file in the VM's folder (CreateScreenshot_Task), which
// is downloaded, then deleted.
func (h *Host) Screenshot(ctx context.Context, vm bootpoint.VM) ([]byte, error) {
	s, err := h.load(ctx, vm)
	if err != nil {
		return nil, err
	}
	res, err := methods.CreateScreenshot_Task(ctx, h.Client, &types.CreateScreenshot_Task{This: s.obj.Reference()})
	if err != nil {
		return nil, fmt.Errorf("esx: VM %s: screenshot: %w", s.mo.Name, err)
	}
	info, err := taskResult(ctx, object.NewTask(h.Client, res.Returnval))
	if err != nil {
		return nil, fmt.Errorf("esx: VM %s: screenshot: %w", s.mo.Name, err)
	}
	file, ok := info.Result.(string)
	var p object.DatastorePath
	if !ok || !p.FromString(file) {
		return nil, fmt.Errorf("%w: VM %s: the screenshot task returned %T %.100v, not a datastore path", ErrImplausible, s.mo.Name, info.Result, info.Result)
	}
	ds, err := h.datastore(ctx, p.Datastore)
	if err != nil {
		return nil, err
	}
	r, _, err := h.transport().Download(ctx, ds, p.Path)
	if err != nil {
		return nil, fmt.Errorf("esx: VM %s: downloading its screenshot: %w", s.mo.Name, err)
	}
	png, err := io.ReadAll(io.LimitReader(r, maxScreenshot+1))
	r.Close()
	if err == nil && len(png) > maxScreenshot {
		err = fmt.Errorf("%w: a screenshot larger than %d bytes", ErrImplausible, maxScreenshot)
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if derr := h.transport().Delete(bg, ds, p.Path); derr != nil {
		h.logger().Warn("esx: deleting a screenshot", "vm", s.mo.Name, "file", file, "err", derr)
	}
	if err != nil {
		return nil, fmt.Errorf("esx: VM %s: reading its screenshot: %w", s.mo.Name, err)
	}
	return png, nil
}
