package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/p2v"
)

// config is the file `standby` reads for its tasks; README.md
// ("Configuration reference") documents every field with its default and
// range, which loadConfig enforces.
//
//	{
//	  "state": "standby-state.json",
//	  "perHost": 2, "global": 4,
//	  "tasks": [
//	    {"name": "web01", "images": "/backups/web01", "trigger": "daily@03:00",
//	     "vm": {"name": "web01-standby", "cpus": 2, "memoryMiB": 4096, "network": "VM Network"},
//	     "maxBootPoints": 30}
//	  ]
//	}
type config struct {
	State   string `json:"state"`
	PerHost int    `json:"perHost"`
	Global  int    `json:"global"`
	// RetryDelay and MaxRetryDelay are durations such as "90s", "5m",
	// "1h"; check parses them into retry and maxRetry.
	RetryDelay    string `json:"retryDelay"`
	MaxRetryDelay string `json:"maxRetryDelay"`
	// BootChecksPerHost bounds boot checks running at once on one host
	// (each a real boot); AlertCommand runs, with the failure as JSON on
	// its standard input, when a boot check does not pass.
	BootChecksPerHost int          `json:"bootChecksPerHost"`
	AlertCommand      []string     `json:"alertCommand"`
	Tasks             []taskConfig `json:"tasks"`

	retry, maxRetry time.Duration
}

type taskConfig struct {
	Name    string   `json:"name"`
	Images  string   `json:"images"`
	Trigger string   `json:"trigger"` // immediately, daily@HH:MM, every:N
	Host    string   `json:"host"`    // groups tasks for the per-host limit; default: the GOVC_URL host
	VM      vmConfig `json:"vm"`
	// MaxBootPoints caps the boot points kept (ESXi's snapshot depth, 30,
	// is the most).
	MaxBootPoints int `json:"maxBootPoints"`
	// PassphraseEnv names the environment variable holding the set's
	// passphrase (never the passphrase itself); default
	// STANDBYKIT_PASSPHRASE, as for `standby run`.
	PassphraseEnv string `json:"passphraseEnv"`
	// VerifyWrites reads each new boot point's written ranges back from
	// the host (default true; false turns it off).
	VerifyWrites *bool `json:"verifyWrites"`
	// FullVerify is how often the newest boot point is compared byte for
	// byte with its point: never (default), daily, weekly or a duration.
	FullVerify string `json:"fullVerify"`
	// BootCheck is when boot points are boot-checked: off (default),
	// every (each new one) or daily (the newest, once a day); the clone's
	// NIC goes on BootCheckNetwork (an isolated port group), or stays
	// disconnected.
	BootCheck        string `json:"bootCheck"`
	BootCheckNetwork string `json:"bootCheckNetwork"`
	// BootCheckSettle, BootCheckToolsWait and BootCheckTimeout are
	// durations ("3m"): when the screenshot of a guest without Tools is
	// taken, how long a green Tools heartbeat is waited for, and the
	// bound of the whole check.
	BootCheckSettle    string `json:"bootCheckSettle"`
	BootCheckToolsWait string `json:"bootCheckToolsWait"`
	BootCheckTimeout   string `json:"bootCheckTimeout"`
}

type vmConfig struct {
	Name       string `json:"name"`
	CPUs       int    `json:"cpus"`
	MemoryMiB  int    `json:"memoryMiB"`
	Network    string `json:"network"`
	Controller string `json:"controller"` // overrides the P2V choice
	Firmware   string `json:"firmware"`   // overrides the P2V choice
	GuestID    string `json:"guestId"`
}

// Defaults of the fields a configuration may leave out.
const (
	defaultPassphraseEnv = "STANDBYKIT_PASSPHRASE"
	defaultRetryDelay    = time.Minute // as bootpoint.Manager's
	defaultMaxRetryDelay = time.Hour
)

// Limits of the values a configuration may hold.
const (
	maxPerHost = 64
	maxGlobal  = 1024
	// ESXi 8's largest VM: 768 vCPUs, 24 TiB of memory (in 4 MiB steps).
	maxCPUs      = 768
	minMemoryMiB = 4
	maxMemoryMiB = 24 << 20
)

// loadConfig reads and checks a configuration file. Unknown and repeated
// fields, values out of range, and tasks or VMs named twice are refused
// with the file, line and field.
func loadConfig(path string) (*config, error) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs // the paths it holds are relative to its folder
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	lines, err := checkFields(b, &config{})
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s:%w", path, jsonError(b, err))
	}
	if err := c.check(lines); err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	c.defaults(path)
	return &c, nil
}

// check enforces the ranges README.md documents. A field given explicitly
// is checked even when its value is the zero that means "default".
func (c *config) check(at fieldLines) error {
	given := func(path string) bool { _, ok := at[path]; return ok }
	if given("perHost") && (c.PerHost < 1 || c.PerHost > maxPerHost) {
		return at.errorf("perHost", "perHost is %d: want 1 to %d", c.PerHost, maxPerHost)
	}
	if given("bootChecksPerHost") && (c.BootChecksPerHost < 1 || c.BootChecksPerHost > maxPerHost) {
		return at.errorf("bootChecksPerHost", "bootChecksPerHost is %d: want 1 to %d", c.BootChecksPerHost, maxPerHost)
	}
	if given("alertCommand") && (len(c.AlertCommand) == 0 || c.AlertCommand[0] == "") {
		return at.errorf("alertCommand", "alertCommand is empty: want a program and its arguments, [\"/usr/local/bin/notify\", \"--standby\"]")
	}
	if given("global") && (c.Global < 1 || c.Global > maxGlobal) {
		return at.errorf("global", "global is %d: want 1 to %d", c.Global, maxGlobal)
	}
	parseDelay := func(field, in string, least time.Duration) (time.Duration, error) {
		v, err := time.ParseDuration(in)
		if err != nil || v < least || v > 24*time.Hour {
			return 0, at.errorf(field, "%s is %q: want a duration from %v to 24h, such as \"90s\", \"5m\" or \"1h\"", field, in, least)
		}
		return v, nil
	}
	c.retry = defaultRetryDelay
	if given("retryDelay") {
		var err error
		if c.retry, err = parseDelay("retryDelay", c.RetryDelay, time.Second); err != nil {
			return err
		}
	}
	c.maxRetry = max(defaultMaxRetryDelay, c.retry)
	if given("maxRetryDelay") {
		var err error
		if c.maxRetry, err = parseDelay("maxRetryDelay", c.MaxRetryDelay, c.retry); err != nil {
			return err
		}
	}
	tasks := map[string]string{} // name → its field path
	vms := map[string]string{}   // VM name → the task that has it
	for i, t := range c.Tasks {
		p := fmt.Sprintf("tasks[%d]", i)
		field := func(name string) string { return p + "." + name }
		switch {
		case t.Name == "":
			return at.errorf(p, "%s needs a name", p)
		case t.Images == "":
			return at.errorf(p, "task %q needs an images folder", t.Name)
		case tasks[t.Name] != "":
			return at.errorf(field("name"), "two tasks named %q (the other at line %d)", t.Name, at[tasks[t.Name]])
		}
		tasks[t.Name] = field("name")
		if _, err := bootpoint.ParseTrigger(t.Trigger); err != nil {
			return at.errorf(field("trigger"), "task %q: %v", t.Name, err)
		}
		if _, err := parseFullVerify(t.FullVerify); err != nil {
			return at.errorf(field("fullVerify"), "task %q: %v", t.Name, err)
		}
		switch t.BootCheck {
		case "", bootpoint.BootCheckOff, bootpoint.BootCheckEvery, bootpoint.BootCheckDaily:
		default:
			return at.errorf(field("bootCheck"), "task %q: bootCheck %q: want off, every or daily", t.Name, t.BootCheck)
		}
		for name, v := range map[string]string{"bootCheckSettle": t.BootCheckSettle, "bootCheckToolsWait": t.BootCheckToolsWait, "bootCheckTimeout": t.BootCheckTimeout} {
			if _, err := bootCheckDuration(v); err != nil {
				return at.errorf(field(name), "task %q: %s %q: %v", t.Name, name, v, err)
			}
		}
		if given(field("maxBootPoints")) && (t.MaxBootPoints < 1 || t.MaxBootPoints > bootpoint.DefaultMaxBootPoints) {
			return at.errorf(field("maxBootPoints"), "task %q: maxBootPoints is %d: want 1 to %d (ESXi's snapshot depth)", t.Name, t.MaxBootPoints, bootpoint.DefaultMaxBootPoints)
		}
		if given(field("vm.cpus")) && (t.VM.CPUs < 1 || t.VM.CPUs > maxCPUs) {
			return at.errorf(field("vm.cpus"), "task %q: vm.cpus is %d: want 1 to %d", t.Name, t.VM.CPUs, maxCPUs)
		}
		if given(field("vm.memoryMiB")) && (t.VM.MemoryMiB < minMemoryMiB || t.VM.MemoryMiB > maxMemoryMiB || t.VM.MemoryMiB%4 != 0) {
			return at.errorf(field("vm.memoryMiB"), "task %q: vm.memoryMiB is %d: want a multiple of 4 from %d to %d", t.Name, t.VM.MemoryMiB, minMemoryMiB, maxMemoryMiB)
		}
		switch p2v.Controller(t.VM.Controller) {
		case "", p2v.ControllerPVSCSI, p2v.ControllerLSILogicSAS, p2v.ControllerSATA, p2v.ControllerNVMe:
		default:
			return at.errorf(field("vm.controller"), "task %q: vm.controller %q: want pvscsi, lsilogic-sas, sata or nvme", t.Name, t.VM.Controller)
		}
		if _, err := p2v.ParseFirmware(t.VM.Firmware); err != nil && t.VM.Firmware != "" {
			return at.errorf(field("vm.firmware"), "task %q: vm.firmware: %v", t.Name, err)
		}
		vm := t.VM.Name
		if vm == "" {
			vm = t.Name + "-standby"
		}
		if other, dup := vms[vm]; dup {
			return at.errorf(p, "tasks %q and %q both keep VM %q", other, t.Name, vm)
		}
		vms[vm] = t.Name
	}
	return nil
}

// defaults fills what the file leaves out and makes its paths absolute
// (relative to the file's folder).
func (c *config) defaults(path string) {
	if c.State == "" {
		c.State = "standby-state.json"
	}
	if !filepath.IsAbs(c.State) {
		c.State = filepath.Join(filepath.Dir(path), c.State)
	}
	for i := range c.Tasks {
		t := &c.Tasks[i]
		if !filepath.IsAbs(t.Images) {
			t.Images = filepath.Join(filepath.Dir(path), t.Images)
		}
		if t.VM.Name == "" {
			t.VM.Name = t.Name + "-standby"
		}
		if t.PassphraseEnv == "" {
			t.PassphraseEnv = defaultPassphraseEnv
		}
	}
}

// vmSpec turns a task's VM settings into the template the pipeline uses.
func (t taskConfig) vmSpec() bootpoint.VMSpec {
	return bootpoint.VMSpec{
		Name: t.VM.Name, CPUs: t.VM.CPUs, MemoryMiB: t.VM.MemoryMiB, Network: t.VM.Network,
		Controller: p2v.Controller(t.VM.Controller), Firmware: p2v.Firmware(t.VM.Firmware), GuestID: t.VM.GuestID,
	}
}

// removeTask deletes a task from the configuration file, keeping every
// other setting as written (relative paths stay relative).
func removeTask(path, name string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var tasks []json.RawMessage
	if err := json.Unmarshal(doc["tasks"], &tasks); err != nil {
		return fmt.Errorf("%s: tasks: %w", path, err)
	}
	kept := tasks[:0]
	for _, raw := range tasks {
		var t struct{ Name string }
		if err := json.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if t.Name != name {
			kept = append(kept, raw)
		}
	}
	if doc["tasks"], err = json.Marshal(kept); err != nil {
		return err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
