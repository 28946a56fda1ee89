package esx

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/vmware/govmomi/object"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
	"github.com/standbykit/standbykit/esx/esxsim"
)

// The conformance suite every Hypervisor passes, on the simulator with
// ESXi's disk semantics; after every step the datastore holds no disk
// file that no chain uses.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	sims := map[*Host]*esxsim.Simulator{}
	hypervisortest.Run(t, hypervisortest.Harness{
		New: func(t *testing.T) bootpoint.Hypervisor {
			sim, h := startHost(t)
			mu.Lock()
			sims[h] = sim
			mu.Unlock()
			return h
		},
		// The extent of the second disk breaks half-way, after the first
		// disk's leaf was written.
		FailNextWrite: func(t *testing.T, hv bootpoint.Hypervisor) {
			h := hv.(*Host)
			h.Transport = &oneFailure{faultyTransport: faultyTransport{Transport: DatastoreHTTP{}, failCall: 4}, h: h}
		},
		WriteGuest: func(t *testing.T, hv bootpoint.Hypervisor, vm bootpoint.VM, d int, off int64, p []byte) error {
			mu.Lock()
			sim := sims[hv.(*Host)]
			mu.Unlock()
			return sim.WriteDisk(vm.Name, d, off, p)
		},
		AfterEach: func(t *testing.T, hv bootpoint.Hypervisor, vm bootpoint.VM) {
			mu.Lock()
			sim := sims[hv.(*Host)]
			mu.Unlock()
			requireNoStrayFiles(t, sim)
		},
	})
}

// oneFailure is a faultyTransport that puts the healthy transport back
// once it has failed.
type oneFailure struct {
	faultyTransport
	h *Host
}

func (o *oneFailure) Upload(ctx context.Context, ds *object.Datastore, p string, f File) error {
	err := o.faultyTransport.Upload(ctx, ds, p, f)
	if errors.Is(err, errInjected) {
		o.h.Transport = nil
	}
	return err
}
