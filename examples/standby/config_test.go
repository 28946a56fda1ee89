package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "standby.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"tasks":[{"name":"web01","images":"sets/web01","trigger":"daily@03:00","vm":{"cpus":4}}]}`), 0o644))
	c, err := loadConfig(path)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "standby-state.json"), c.State)
	require.Equal(t, filepath.Join(dir, "sets/web01"), c.Tasks[0].Images)
	require.Equal(t, "web01-standby", c.Tasks[0].vmSpec().Name)
	require.Equal(t, 4, c.Tasks[0].vmSpec().CPUs)
	require.Equal(t, "STANDBYKIT_PASSPHRASE", c.Tasks[0].PassphraseEnv)
	require.Equal(t, time.Minute, c.retry)
	require.Equal(t, time.Hour, c.maxRetry)

	require.NoError(t, os.WriteFile(path, []byte(`{"perHost": 1, "global": 8, "retryDelay": "30s", "maxRetryDelay": "10m",
		"tasks":[{"name":"a","images":"x","passphraseEnv":"A_PASS","maxBootPoints":30,
		          "vm":{"memoryMiB":8192,"cpus":768,"controller":"nvme","firmware":"efi"}}]}`), 0o644))
	c, err = loadConfig(path)
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, c.retry)
	require.Equal(t, 10*time.Minute, c.maxRetry)
	require.Equal(t, "A_PASS", c.Tasks[0].PassphraseEnv)
	require.Equal(t, "efi", string(c.Tasks[0].vmSpec().Firmware))
}

// Every refusal names the file, the line and the field.
func TestLoadConfigRefusals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "standby.json")
	for _, c := range []struct {
		doc, want string
	}{
		{`{"tasks":[{"name":"a"}]}`, `standby.json:1: task "a" needs an images folder`},
		{`{"tasks":[{"name":"a","images":"x","trigger":"hourly"}]}`, `standby.json:1: task "a": trigger "hourly"`},
		{"{\"tasks\":[\n {\"name\":\"a\",\"images\":\"x\"},\n {\"name\":\"a\",\"images\":\"y\"}]}", `standby.json:3: two tasks named "a" (the other at line 2)`},
		{"{\"tasks\":[\n {\"name\":\"a\",\"images\":\"x\"},\n {\"name\":\"b\",\"images\":\"y\",\"vm\":{\"name\":\"a-standby\"}}]}", `standby.json:3: tasks "a" and "b" both keep VM "a-standby"`},
		{"{\"tasks\":[{\"name\":\"a\",\"images\":\"x\",\n  \"vm\": {\"cpus\": 2,\n    \"memoryMB\": 4096}}]}", `standby.json:3: unknown field "memoryMB" in tasks[0].vm (did you mean "memoryMiB"?)`},
		{"{\"tasks\":[{\"name\":\"a\",\"images\":\"x\",\"vm\":{\"cpu\":2}}]}", `unknown field "cpu" in tasks[0].vm (did you mean "cpus"?)`},
		{"{\n\"State\": \"s.json\"}", `standby.json:2: unknown field "State" (did you mean "state"?)`},
		{`{"perHost": 2, "perHost": 3}`, `standby.json:1: field "perHost" given twice`},
		{"{\"tasks\":[{\"name\":\"a\",\"images\":\"x\",\n\"maxBootPoints\": 50}]}", `standby.json:2: task "a": maxBootPoints is 50: want 1 to 30`},
		{`{"tasks":[{"name":"a","images":"x","maxBootPoints":-1}]}`, `maxBootPoints is -1`},
		{`{"tasks":[{"name":"a","images":"x","maxBootPoints":0}]}`, `maxBootPoints is 0`},
		{`{"perHost": -1}`, `standby.json:1: perHost is -1: want 1 to 64`},
		{`{"perHost": 0}`, `perHost is 0`},
		{`{"global": 0}`, `global is 0`},
		{`{"tasks":[{"name":"a","images":"x","vm":{"memoryMiB":1000001}}]}`, `vm.memoryMiB is 1000001: want a multiple of 4`},
		{`{"tasks":[{"name":"a","images":"x","vm":{"memoryMiB":0}}]}`, `vm.memoryMiB is 0`},
		{`{"tasks":[{"name":"a","images":"x","vm":{"cpus":0}}]}`, `vm.cpus is 0: want 1 to 768`},
		{`{"tasks":[{"name":"a","images":"x","vm":{"controller":"ide"}}]}`, `vm.controller "ide"`},
		{`{"tasks":[{"name":"a","images":"x","vm":{"firmware":"uefi"}}]}`, `vm.firmware: p2v: firmware "uefi": want bios or efi`},
		{`{"retryDelay": "soon"}`, `retryDelay is "soon": want a duration`},
		{`{"retryDelay": "5m", "maxRetryDelay": "1m"}`, `maxRetryDelay is "1m": want a duration from 5m0s to 24h`},
		{"{\"tasks\":[{\"name\":\"a\",\n\"images\":3}]}", `standby.json:2: tasks.images: want string, got number`},
		{"{\"tasks\":\n", `standby.json:2: the file ends in the middle of a value`},
		{"{\"tasks\": [}", `standby.json:1: invalid character '}'`},
		{"[]", `standby.json:1: want a JSON object, got array`},
		{" \n", `standby.json:1: the file is empty`},
	} {
		require.NoError(t, os.WriteFile(path, []byte(c.doc), 0o644))
		_, err := loadConfig(path)
		require.Error(t, err, c.doc)
		require.Contains(t, err.Error(), c.want, c.doc)
	}
	_, err := loadConfig(filepath.Join(t.TempDir(), "missing.json"))
	require.ErrorContains(t, err, "missing.json")
}
