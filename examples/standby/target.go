package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
)

// target is the ESXi host the commands work on: the one GOVC_URL names,
// or govmomi's in-process simulator with its datastore in a local folder.
type target struct {
	host *esx.Host
	name string // for the per-host limit and messages
	sim  *esxsim.Simulator
}

// connect opens the target. simDir is the simulator's datastore folder
// when GOVC_URL is unset; with keep, the simulator keeps its world there
// from one command to the next (esxsim.Open), so that the commands can be
// tried one after another without ESXi.
func connect(ctx context.Context, simDir string, keep bool, logger *slog.Logger, out io.Writer) (*target, error) {
	var cfg esx.Config
	var err error
	t := &target{}
	if os.Getenv(esx.EnvURL) == "" {
		if err := os.MkdirAll(simDir, 0o755); err != nil {
			return nil, err
		}
		// The simulator reports benign faults on the standard logger.
		log.SetOutput(io.Discard)
		start := esxsim.Start
		if keep {
			start = esxsim.Open
		}
		t.sim, err = start(ctx, simDir)
		if err != nil {
			return nil, err
		}
		t.sim.Logger = logger
		cfg = esx.Config{URL: t.sim.URL(), Insecure: true, Datastore: esxsim.Datastore, ApplianceImage: esx.ApplianceImageNone}
		t.name = "simulator"
		fmt.Fprintf(out, "   (GOVC_URL is not set: using govmomi's vSphere simulator, datastore in %s)\n", simDir)
	} else {
		if cfg, err = esx.ConfigFromEnv(os.Getenv); err != nil {
			return nil, err
		}
		t.name = cfg.URL
		if u, err := url.Parse(cfg.URL); err == nil && u.Host != "" {
			t.name = u.Hostname()
		}
	}
	t.host, err = esx.Connect(ctx, cfg)
	if err != nil {
		t.close(ctx)
		return nil, err
	}
	t.host.Logger = logger
	if t.sim != nil {
		// The simulator runs the writer appliance's program in process:
		// no need to wait long between looks.
		t.host.Appliance.Poll = 20 * time.Millisecond
	}
	return t, nil
}

func (t *target) close(ctx context.Context) {
	if t.host != nil {
		t.host.Close(ctx)
	}
	if t.sim != nil {
		if err := t.sim.Shutdown(); err != nil {
			// The VMs this command made are on the datastore, but the
			// next command will not know them: say so, loudly.
			fmt.Fprintf(os.Stderr, "standby: %v\n", err)
		}
	}
}
