package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/cli/clitest"
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
		require.Contains(t, r.Stdout, "usage: aipimage COMMAND")
		require.Empty(t, r.Stderr)
	}
	r := run("create", "-h")
	require.Equal(t, 0, r.Code)
	require.Contains(t, r.Stdout, "usage: aipimage create [flags] disk.raw...")
	require.Contains(t, r.Stdout, "bios or efi")
	require.NotContains(t, r.Stdout, "--point")
	r = run("help", "extract")
	require.Equal(t, 0, r.Code)
	require.Contains(t, r.Stdout, "--point")
	require.NotContains(t, r.Stdout, "--firmware")
	r = run("info", "--help")
	require.Equal(t, 0, r.Code)
	require.Contains(t, r.Stdout, "usage: aipimage info DIR|FILE")
	require.NotContains(t, r.Stdout, "flags")

	require.Equal(t, 2, run().Code)
	require.Equal(t, 2, run("bogus").Code)
	require.Equal(t, 2, run("info").Code)
	r = run("extract", "somewhere")
	require.Equal(t, 2, r.Code)
	require.Equal(t, "aipimage: extract: --out is required\nrun \"aipimage extract -h\" for its usage\n", r.Stderr)

	work := t.TempDir()
	raw := filepath.Join(work, "d.raw")
	require.NoError(t, os.WriteFile(raw, []byte(strings.Repeat("disk data ", 1<<16)[:1<<19]), 0o644))
	set := filepath.Join(work, "set")
	r = run("create", raw, "--out", set, "--host", "h1", "--firmware", "foo")
	require.Equal(t, 2, r.Code)
	require.Contains(t, r.Stderr, `--firmware "foo": want bios or efi`)
	r = run("create", raw, "--out", set, "--host", "h1", "--firmware", "bios")
	require.Equal(t, 0, r.Code, r.Stderr)
	full := strings.TrimSuffix(strings.Fields(r.Stdout)[1], ":")
	r = run("create", raw, "--out", set, "--parent", full, "--firmware", "efi")
	require.Equal(t, 2, r.Code, "an incremental takes its firmware from its parent")
	r = run("create", raw, "--parent", full, "--out", set)
	require.Equal(t, 0, r.Code, r.Stderr)

	// Flags after the folder.
	out := filepath.Join(work, "x.raw")
	r = run("extract", set, "--point", "1", "--out", out)
	require.Equal(t, 0, r.Code, r.Stderr)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	want, err := os.ReadFile(raw)
	require.NoError(t, err)
	require.Equal(t, want, got)
	r = run("info", set)
	require.Equal(t, 0, r.Code)
	require.Contains(t, r.Stdout, "firmware bios")

	// Errors name the path, with one prefix.
	missing := filepath.Join(work, "nothing")
	r = run("info", missing)
	require.Equal(t, 1, r.Code)
	require.Equal(t, "aipimage: "+missing+": image set folder: no such file or directory\n", r.Stderr)
	empty := t.TempDir()
	r = run("verify", empty)
	require.Equal(t, 1, r.Code)
	require.Equal(t, "aipimage: no full image in set: "+empty+": no image files (*.skimg) in the folder\n", r.Stderr)
	r = run("create", filepath.Join(work, "nope.raw"), "--out", set, "--host", "h")
	require.Equal(t, 1, r.Code)
	require.Contains(t, r.Stderr, filepath.Join(work, "nope.raw"))
}
