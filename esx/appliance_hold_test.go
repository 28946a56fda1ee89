package esx

import "context"

// acquireAppliance returns the appliance, ready as for a run, and
// holds it (no run starts) until release is called.
func (h *Host) acquireAppliance(ctx context.Context) (*vmState, func(), error) {
	b := h.batcher()
	select {
	case b.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	release := func() { <-b.turn }
	app, err := h.ensureAppliance(ctx)
	if err != nil {
		release()
		return nil, nil, err
	}
	return app, release, nil
}
