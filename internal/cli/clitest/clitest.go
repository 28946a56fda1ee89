// Package clitest runs the example programs as an operator does: built
// with go build into a temporary folder and run as separate processes.
package clitest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var builds struct {
	sync.Mutex
	dir   string
	paths map[string]string
}

// Build builds the main package in folder pkg (relative to the test's
// working folder, e.g. "." or "../aipimage") once per test binary and
// returns the program's path. It skips the test without the go command.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on the PATH: cannot build the program")
	}
	abs, err := filepath.Abs(pkg)
	if err != nil {
		t.Fatal(err)
	}
	builds.Lock()
	defer builds.Unlock()
	if p, ok := builds.paths[abs]; ok {
		return p
	}
	if builds.dir == "" {
		// Shared by every test of the binary: removed by Cleanup.
		if builds.dir, err = os.MkdirTemp("", "standbykit-cli-"); err != nil {
			t.Fatal(err)
		}
		builds.paths = map[string]string{}
	}
	out := filepath.Join(builds.dir, fmt.Sprintf("%d-%s", len(builds.paths), filepath.Base(abs)))
	cmd := exec.Command(goTool, "build", "-o", out, ".")
	cmd.Dir = abs
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	builds.paths[abs] = out
	return out
}

// Cleanup removes the programs Build made; call it from TestMain after
// the tests ran.
func Cleanup() {
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.dir, builds.paths = "", nil
}

// Result is what a run of a program gave.
type Result struct {
	Stdout, Stderr string
	Code           int // exit status
}

// Run runs program with args, its environment being the test's plus env
// ("NAME=value").
func Run(t testing.TB, program string, env []string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(program, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %v: %v", filepath.Base(program), args, err)
	}
	return Result{out.String(), errOut.String(), cmd.ProcessState.ExitCode()}
}
