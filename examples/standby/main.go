// Command standby keeps standby VMs on VMware ESXi from disk-image
// backups: every backup point becomes a boot point, a VM snapshot ready to
// power on.
//
//	standby demo [--dir DIR] [--keep] [--incrementals N]
//	standby run --images DIR [--vm NAME] [--datastore-dir DIR]
//	standby status   --config FILE [--json]
//	standby sync     --config FILE [--watch DURATION]
//	standby pause    --config FILE TASK
//	standby resume   --config FILE TASK
//	standby run-now  --config FILE TASK
//	standby failover --config FILE [--point N] [--network NET] TASK
//	standby testboot --config FILE [--point N] [--network NET] TASK
//	standby delete   --config FILE [--with-vm] TASK
//
// The target is the ESXi host (or vCenter) named by govc's variables:
// GOVC_URL, GOVC_USERNAME, GOVC_PASSWORD, GOVC_INSECURE,
// GOVC_TLS_KNOWN_HOSTS, GOVC_DATACENTER, GOVC_DATASTORE,
// GOVC_RESOURCE_POOL, GOVC_FOLDER, GOVC_NETWORK. Without GOVC_URL the
// commands run against govmomi's in-process vSphere simulator, whose
// datastore is a local folder and whose VMs last as long as the command.
//
// demo writes the image sets (a full image and six incrementals) of two
// sample servers, a Debian and a Windows Server one, prints the P2V plan
// of each, keeps a standby VM of each with one boot point per point,
// reads every boot point's disk back from the datastore and compares it
// with the image point and its patches, and shows patched lines before
// and after.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "standby:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  standby demo [--dir DIR] [--keep] [--incrementals N]
  standby run --images DIR [--vm NAME] [--datastore-dir DIR]
  standby status|sync|pause|resume|run-now|failover|testboot|discard|keep|delete --config FILE [options] [TASK]
run "standby COMMAND -h" for a command's options`

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	switch cmd {
	case "demo":
		var o demoOptions
		fs.StringVar(&o.dir, "dir", "", "folder for the sample image set and the simulator's datastore (default: a temporary folder)")
		fs.BoolVar(&o.keep, "keep", false, "keep that folder afterwards")
		fs.IntVar(&o.incrementals, "incrementals", 6, "incremental images in the sample set")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return demo(ctx, out, o)
	case "run":
		var o runOptions
		fs.StringVar(&o.images, "images", "", "folder of the image set (required)")
		fs.StringVar(&o.vm, "vm", "", "standby VM name (default: the image's host name + \"-standby\")")
		fs.StringVar(&o.simDir, "datastore-dir", "standby-datastore", "the simulator's datastore folder when GOVC_URL is unset")
		fs.StringVar(&o.passphraseEnv, "passphrase-env", "STANDBYKIT_PASSPHRASE", "environment variable holding the set's passphrase")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if o.images == "" {
			return errors.New("run: --images is required")
		}
		return runOnce(ctx, out, o)
	case "status", "sync", "pause", "resume", "run-now", "failover", "testboot", "delete", "discard", "keep":
		var o opsOptions
		fs.StringVar(&o.config, "config", "standby.json", "task configuration file")
		fs.BoolVar(&o.json, "json", false, "status: print JSON for scripts")
		fs.DurationVar(&o.watch, "watch", 0, "sync: run again at this interval until interrupted")
		fs.IntVar(&o.point, "point", -1, "failover/testboot: boot point sequence (default: the newest)")
		fs.StringVar(&o.network, "network", "", "failover: network to connect; testboot: isolated network of the clone")
		fs.BoolVar(&o.withVM, "with-vm", false, "delete: also delete the standby VM and its disks")
		fs.StringVar(&o.simDir, "datastore-dir", "standby-datastore", "the simulator's datastore folder when GOVC_URL is unset")
		rest, err := parseInterspersed(fs, args)
		if err != nil {
			return err
		}
		o.cmd = cmd
		switch {
		case cmd == "status" || cmd == "sync":
			if len(rest) > 0 {
				return fmt.Errorf("%s takes no task name (got %s)", cmd, strings.Join(rest, " "))
			}
		case len(rest) != 1:
			return fmt.Errorf("%s needs one task name", cmd)
		default:
			o.task = rest[0]
		}
		return ops(ctx, out, o)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// parseInterspersed parses flags before and after positional arguments
// ("standby failover web01 --point 3"), which package flag alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
