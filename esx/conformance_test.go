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
// ESXi's disk semantics, with each Writer; after every step the datastore
// holds no disk file that no chain uses.
func TestConformance(t *testing.T) {
	for _, w := range []Writer{WriterAppliance, WriterUpload} {
		t.Run(string(w), func(t *testing.T) { hypervisortest.Run(t, harness(w)) })
	}
}

func harness(w Writer) hypervisortest.Harness {
	var mu sync.Mutex
	sims := map[*Host]*esxsim.Simulator{}
	simOf := func(hv bootpoint.Hypervisor) *esxsim.Simulator {
		mu.Lock()
		defer mu.Unlock()
		return sims[hv.(*Host)]
	}
	h := hypervisortest.Harness{
		New: func(t *testing.T) bootpoint.Hypervisor {
			sim, h := startHost(t)
			h.Writer = w
			mu.Lock()
			sims[h] = sim
			mu.Unlock()
			return h
		},
		WriteGuest: func(t *testing.T, hv bootpoint.Hypervisor, vm bootpoint.VM, d int, off int64, p []byte) error {
			return simOf(hv).WriteDisk(vm.Name, d, off, p)
		},
		AfterEach: func(t *testing.T, hv bootpoint.Hypervisor, vm bootpoint.VM) {
			requireNoStrayFiles(t, simOf(hv))
		},
	}
	switch w {
	case WriterAppliance:
		// The appliance damages what it writes (the leaves are
		// half-written), and its read-back check says so.
		h.FailNextWrite = func(t *testing.T, hv bootpoint.Hypervisor) {
			simOf(hv).SetApplianceFault(esxsim.ApplianceCorruptsWrites)
		}
	case WriterUpload:
		// The upload of the second disk's extent fails, after the first
		// disk's leaf was written.
		h.FailNextWrite = func(t *testing.T, hv bootpoint.Hypervisor) {
			h := hv.(*Host)
			h.Transport = &oneFailure{faultyTransport: faultyTransport{Transport: DatastoreHTTP{}, failCall: 3}, h: h}
		}
	}
	return h
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
