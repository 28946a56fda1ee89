package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// config is what the kernel command line tells the writer.
type config struct {
	// reportDev is the serial port the report goes to, a name under
	// /dev: standbykit.report=ttyS1 (default ttyS0, the one serial port
	// of the appliance VM on ESXi).
	reportDev string
	// wait bounds the wait for the payload disk: standbykit.wait=90s
	// (or plain seconds; default 60 s).
	wait time.Duration
	// settle is how long the set of disks must stay the same, once the
	// payload disk is there, before the writer takes it as complete:
	// standbykit.settle=3s (default 2 s).
	settle time.Duration
	// moduleParams are the module parameters the command line gives
	// (nvme_core.io_timeout=60, scsi_mod.scan=sync), by module name, as
	// modprobe would pass them: "param=value param=value".
	moduleParams map[string]string
}

func defaultConfig() config {
	return config{reportDev: "ttyS0", wait: 60 * time.Second, settle: 2 * time.Second}
}

// parseCmdline reads the standbykit.* parameters of a kernel command
// line (/proc/cmdline); others are ignored. A bad value is an error, the
// defaults stay for parameters not given.
func parseCmdline(line string) (config, error) {
	cfg := defaultConfig()
	for _, f := range strings.Fields(line) {
		key, val, _ := strings.Cut(f, "=")
		var err error
		switch key {
		case "standbykit.report":
			val = strings.TrimPrefix(val, "/dev/")
			if val == "" || strings.ContainsAny(val, "/.") {
				err = fmt.Errorf("want a device name such as ttyS1")
			}
			cfg.reportDev = val
		case "standbykit.wait":
			cfg.wait, err = parseSeconds(val)
		case "standbykit.settle":
			cfg.settle, err = parseSeconds(val)
		default:
			mod, param, ok := strings.Cut(key, ".")
			if !ok || mod == "" || param == "" || mod == "standbykit" {
				continue
			}
			mod = strings.ReplaceAll(mod, "-", "_")
			p := param + f[len(key):] // param or param=value
			if prev := cfg.moduleParams[mod]; prev != "" {
				p = prev + " " + p
			}
			if cfg.moduleParams == nil {
				cfg.moduleParams = map[string]string{}
			}
			cfg.moduleParams[mod] = p
			continue
		}
		if err != nil {
			return defaultConfig(), fmt.Errorf("kernel command line: %s: %v", f, err)
		}
	}
	return cfg, nil
}

// parseSeconds reads a duration ("90s", "2m") or a number of seconds.
func parseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		s = strconv.FormatFloat(n, 'f', -1, 64) + "s"
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("want a duration between 0 and 24h")
	}
	return d, nil
}
