package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/cli/clitest"
	"github.com/standbykit/standbykit/internal/sample"
)

func TestMain(m *testing.M) {
	code := m.Run()
	clitest.Cleanup()
	os.Exit(code)
}

// The program as an operator runs it: help, flags after arguments, exit
// statuses and error messages.
func TestBinaryConventions(t *testing.T) {
	bin := clitest.Build(t, ".")
	run := func(args ...string) clitest.Result { return clitest.Run(t, bin, nil, args...) }
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		r := run(args...)
		require.Equal(t, 0, r.Code, args)
		require.Contains(t, r.Stdout, "usage: p2vinspect")
		require.Contains(t, r.Stdout, "--images")
		require.Empty(t, r.Stderr)
	}
	r := run()
	require.Equal(t, 2, r.Code)
	require.Contains(t, r.Stderr, "p2vinspect: give raw disk files or --images DIR\nrun \"p2vinspect -h\" for its usage")
	require.Equal(t, 2, run("--bogus").Code)

	dir := t.TempDir()
	s, err := sample.Write(context.Background(), dir, sample.Options{DiskSize: 4 << 20, Incrementals: 1, KeepContent: true})
	require.NoError(t, err)
	raw := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(raw, s.Disks[1], 0o644))
	r = run(raw, "--json")
	require.Equal(t, 0, r.Code, r.Stderr)
	require.True(t, strings.HasPrefix(r.Stdout, "{"), "--json after the file is honoured: %s", r.Stdout)
	r = run("--images", dir, "--point", "0")
	require.Equal(t, 0, r.Code, r.Stderr)
	require.Contains(t, r.Stdout, "firmware:   bios")

	missing := filepath.Join(dir, "nothing")
	r = run("--images", missing)
	require.Equal(t, 1, r.Code)
	require.Equal(t, "p2vinspect: "+missing+": image set folder: no such file or directory\n", r.Stderr)
}
