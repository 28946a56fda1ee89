package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/p2v"
)

// config is the file `standby` reads for its tasks.
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
	State   string       `json:"state"`
	PerHost int          `json:"perHost"`
	Global  int          `json:"global"`
	Tasks   []taskConfig `json:"tasks"`
}

type taskConfig struct {
	Name    string `json:"name"`
	Images  string `json:"images"`
	Trigger string `json:"trigger"` // immediately, daily@HH:MM, every:N
	Host    string `json:"host"`    // groups tasks for the per-host limit; default: the GOVC_URL host
	VM      struct {
		Name       string `json:"name"`
		CPUs       int    `json:"cpus"`
		MemoryMiB  int    `json:"memoryMiB"`
		Network    string `json:"network"`
		Controller string `json:"controller"` // overrides the P2V choice
		GuestID    string `json:"guestId"`
	} `json:"vm"`
	MaxBootPoints int `json:"maxBootPoints"`
	// PassphraseEnv names the environment variable holding the set's
	// passphrase (never the passphrase itself).
	PassphraseEnv string `json:"passphraseEnv"`
	// VerifyWrites reads each new boot point's written ranges back from
	// the host (default true; false turns it off).
	VerifyWrites *bool `json:"verifyWrites"`
	// FullVerify is how often the newest boot point is compared byte for
	// byte with its point: never (default), daily, weekly or a duration.
	FullVerify string `json:"fullVerify"`
}

func loadConfig(path string) (*config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.State == "" {
		c.State = "standby-state.json"
	}
	if !filepath.IsAbs(c.State) {
		c.State = filepath.Join(filepath.Dir(path), c.State)
	}
	seen := map[string]bool{}
	for i, t := range c.Tasks {
		if t.Name == "" || t.Images == "" {
			return nil, fmt.Errorf("%s: task %d needs a name and an images folder", path, i+1)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("%s: two tasks named %q", path, t.Name)
		}
		seen[t.Name] = true
		if _, err := bootpoint.ParseTrigger(t.Trigger); err != nil {
			return nil, fmt.Errorf("%s: task %q: %w", path, t.Name, err)
		}
		if _, err := parseFullVerify(t.FullVerify); err != nil {
			return nil, fmt.Errorf("%s: task %q: %w", path, t.Name, err)
		}
		if !filepath.IsAbs(t.Images) {
			c.Tasks[i].Images = filepath.Join(filepath.Dir(path), t.Images)
		}
		if t.VM.Name == "" {
			c.Tasks[i].VM.Name = t.Name + "-standby"
		}
	}
	return &c, nil
}

// vmSpec turns a task's VM settings into the template the pipeline uses.
func (t taskConfig) vmSpec() bootpoint.VMSpec {
	return bootpoint.VMSpec{
		Name: t.VM.Name, CPUs: t.VM.CPUs, MemoryMiB: t.VM.MemoryMiB, Network: t.VM.Network,
		Controller: p2v.Controller(t.VM.Controller), GuestID: t.VM.GuestID,
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
