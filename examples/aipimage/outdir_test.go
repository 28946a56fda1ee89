package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A first backup goes to a folder that does not exist yet.
func TestCreateMakesOutputFolder(t *testing.T) {
	work := t.TempDir()
	raw := filepath.Join(work, "disk.raw")
	require.NoError(t, os.WriteFile(raw, make([]byte, 1<<20), 0o644))
	set := filepath.Join(work, "backups", "web01")
	_, err := runCLI(t, "create", "--out", set, "--host", "web01", raw)
	require.NoError(t, err)
	names, err := filepath.Glob(filepath.Join(set, "*.skimg"))
	require.NoError(t, err)
	require.Len(t, names, 1)
	out, err := runCLI(t, "info", set)
	require.NoError(t, err)
	require.Contains(t, out, `host "web01"`)
}
