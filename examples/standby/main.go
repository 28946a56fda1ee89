// Command standby keeps standby VMs on VMware ESXi from disk-image
// backups: every backup point becomes a boot point, a VM snapshot ready to
// power on.
//
//	standby demo [--dir DIR] [--keep] [--incrementals N]
//	standby run --images DIR [--vm NAME] [--datastore-dir DIR] [--passphrase-env VAR]
//	standby status   [--config FILE] [--json]
//	standby sync     [--config FILE] [--watch DURATION]
//	standby pause    [--config FILE] TASK
//	standby resume   [--config FILE] TASK
//	standby run-now  [--config FILE] TASK
//	standby failover [--config FILE] [--point N] [--network NET] TASK
//	standby testboot [--config FILE] [--point N] [--network NET] TASK
//	standby discard  [--config FILE] TASK
//	standby keep     [--config FILE] TASK
//	standby delete   [--config FILE] [--with-vm] TASK
//	standby verify   [--config FILE] [--point N] [--full] TASK
//	standby bootcheck [--config FILE] [--point N] TASK
//	standby reseed   [--config FILE] TASK
//
// Flags may come before or after the task name; `standby help COMMAND`
// or `standby COMMAND -h` lists a command's flags. The configuration file
// (default standby.json) is described in README.md.
//
// The target is the ESXi host (or vCenter) named by govc's variables:
// GOVC_URL, GOVC_USERNAME, GOVC_PASSWORD, GOVC_INSECURE,
// GOVC_TLS_KNOWN_HOSTS, GOVC_DATACENTER, GOVC_DATASTORE,
// GOVC_RESOURCE_POOL, GOVC_FOLDER, GOVC_NETWORK. Without GOVC_URL the
// commands run against govmomi's in-process vSphere simulator, whose
// datastore is a local folder (--datastore-dir) and whose VMs, snapshots
// and power states are kept beside it from one command to the next
// (demo starts from an empty one).
//
// Exit status: 0 success; 1 the command failed (sync: a task failed or is
// failing); 2 a wrong command line; 3 status found a task that needs an
// operator (failing, diverged); 130 and 143 stopped by SIGINT and SIGTERM
// (a first signal stops at a safe step: the step in flight is undone and
// the task recorded as interrupted, resumed by the next run; a second one
// stops at once).
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
	"flag"
	"io"
	"os"

	"github.com/standbykit/standbykit/internal/cli"
)

func main() {
	cli.Main("standby", func(ctx context.Context, args []string) error { return run(ctx, args, os.Stdout) })
}

func run(ctx context.Context, args []string, out io.Writer) error {
	p := &cli.Program{
		Name:     "standby",
		About:    "standby keeps standby VMs on VMware ESXi from disk-image backups: each backup point becomes a boot point.",
		Commands: commands(out),
		Notes: `The target is the host GOVC_URL names (with govc's other GOVC_* variables);
without it, govmomi's vSphere simulator, which keeps its VMs beside its
datastore folder (--datastore-dir) from one command to the next.
Exit status: 0 success, 1 failure, 2 wrong command line, 3 (status) a task
needs an operator, 130/143 stopped by SIGINT/SIGTERM.`,
		Stdout: out,
	}
	return p.Run(ctx, args)
}

// commands is the command table: adding a command is adding an entry.
// Manager commands (those over a configuration file) are built by
// managerCmd, which adds --config (and, for those that reach the host,
// --datastore-dir) to the flags their setup declares.
func commands(out io.Writer) []cli.Command {
	return []cli.Command{
		{Name: "demo", Summary: "build a sample image set and keep a verified standby VM from it on the simulator",
			Setup: func(fs *flag.FlagSet) cli.Action {
				var o demoOptions
				fs.StringVar(&o.dir, "dir", "", "folder for the sample image set and the simulator's datastore (default: a temporary folder)")
				fs.BoolVar(&o.keep, "keep", false, "keep that folder afterwards")
				fs.IntVar(&o.incrementals, "incrementals", 6, "incremental images in the sample set")
				return noArgs(func(ctx context.Context) error { return demo(ctx, out, o) })
			}},
		{Name: "run", Summary: "keep one standby VM from one image set, once, verifying every new boot point",
			Setup: func(fs *flag.FlagSet) cli.Action {
				var o runOptions
				fs.StringVar(&o.images, "images", "", "folder of the image set (required)")
				fs.StringVar(&o.vm, "vm", "", "standby VM name (default: the image's host name + \"-standby\")")
				fs.StringVar(&o.simDir, "datastore-dir", "standby-datastore", "the simulator's datastore folder when GOVC_URL is unset")
				fs.StringVar(&o.passphraseEnv, "passphrase-env", defaultPassphraseEnv, "environment variable holding the set's passphrase")
				return noArgs(func(ctx context.Context) error {
					if o.images == "" {
						return cli.Usagef("", "--images is required")
					}
					return runOnce(ctx, out, o)
				})
			}},
		{Name: "status", Summary: "show every task (exit status 3 when one is failing or needs a decision)",
			Setup: managerCmd(out, opsLocal, func(fs *flag.FlagSet) opsAction {
				asJSON := fs.Bool("json", false, "print JSON for scripts (times RFC 3339, durations in seconds)")
				return func(ctx context.Context, e *opsEnv, _ string) error { return status(e, *asJSON) }
			})},
		{Name: "sync", Summary: "run the tasks that are due (exit status 1 when one failed or is failing)",
			Setup: managerCmd(out, opsHost, func(fs *flag.FlagSet) opsAction {
				watch := fs.Duration("watch", 0, "run again at this interval until stopped (SIGINT, SIGTERM)")
				return func(ctx context.Context, e *opsEnv, _ string) error { return syncTasks(ctx, e, *watch) }
			})},
		{Name: "pause", Args: "TASK", Summary: "stop making boot points for a task until resumed",
			Setup: managerCmd(out, opsLocal|opsTask, func(*flag.FlagSet) opsAction { return setPaused(true) })},
		{Name: "resume", Args: "TASK", Summary: "make boot points for a paused task again",
			Setup: managerCmd(out, opsLocal|opsTask, func(*flag.FlagSet) opsAction { return setPaused(false) })},
		{Name: "run-now", Args: "TASK", Summary: "make a boot point for one task now, whatever its trigger, pause or retry time",
			Setup: managerCmd(out, opsHost|opsTask, func(*flag.FlagSet) opsAction { return runNow })},
		{Name: "failover", Args: "TASK", Summary: "power the standby VM on from a boot point",
			Setup: managerCmd(out, opsHost|opsTask, func(fs *flag.FlagSet) opsAction {
				point := fs.Int("point", -1, "boot point sequence (default: the newest)")
				network := fs.String("network", "", "network to connect the VM to (default: its own)")
				return func(ctx context.Context, e *opsEnv, task string) error {
					return failover(ctx, e, task, *point, *network)
				}
			})},
		{Name: "testboot", Args: "TASK", Summary: "boot a throwaway clone of a boot point; the chain is untouched",
			Setup: managerCmd(out, opsHost|opsTask, func(fs *flag.FlagSet) opsAction {
				point := fs.Int("point", -1, "boot point sequence (default: the newest)")
				network := fs.String("network", "", "isolated network to connect the clone to")
				return func(ctx context.Context, e *opsEnv, task string) error {
					return testBoot(ctx, e, task, *point, *network)
				}
			})},
		{Name: "discard", Args: "TASK", Summary: "a DIVERGED task: revert its VM to its current boot point",
			Setup: managerCmd(out, opsHost|opsTask, func(*flag.FlagSet) opsAction { return discard })},
		{Name: "keep", Args: "TASK", Summary: "a DIVERGED task: keep the VM as it runs and end the task",
			Setup: managerCmd(out, opsLocal|opsTask, func(*flag.FlagSet) opsAction { return keep })},
		{Name: "bootcheck", Args: "TASK", Summary: "boot a throwaway clone of a boot point and judge whether it booted; the verdict is kept",
			Setup: managerCmd(out, opsHost|opsTask, func(fs *flag.FlagSet) opsAction {
				point := fs.Int("point", -1, "boot point sequence (default: the newest)")
				return func(ctx context.Context, e *opsEnv, task string) error { return bootCheck(ctx, e, task, *point) }
			})},
		{Name: "verify", Args: "TASK", Summary: "read a boot point back from the host and compare it with its point",
			Setup: managerCmd(out, opsHost|opsTask, func(fs *flag.FlagSet) opsAction {
				point := fs.Int("point", -1, "boot point sequence (default: the newest)")
				full := fs.Bool("full", false, "compare every byte of every disk (the disk's size), not only what the boot point wrote")
				return func(ctx context.Context, e *opsEnv, task string) error {
					return verifyTask(ctx, e, task, *point, *full)
				}
			})},
		{Name: "reseed", Args: "TASK", Summary: "a task whose disks were resized: a new standby from the newest point, replacing the old",
			Setup: managerCmd(out, opsHost|opsTask, func(*flag.FlagSet) opsAction { return reseedTask })},
		{Name: "delete", Args: "TASK", Summary: "delete a task from the configuration and state",
			Setup: managerCmd(out, opsHost|opsTask, func(fs *flag.FlagSet) opsAction {
				withVM := fs.Bool("with-vm", false, "also delete the standby VM and its disks")
				return func(ctx context.Context, e *opsEnv, task string) error { return deleteTask(ctx, e, task, *withVM) }
			})},
	}
}

// noArgs is the Action of a command without positional arguments.
func noArgs(f func(ctx context.Context) error) cli.Action {
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return cli.Usagef("", "unexpected argument %q", args[0])
		}
		return f(ctx)
	}
}
