package main

import (
	"os"
	"path/filepath"
	"testing"

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

	for _, bad := range []string{
		`{"tasks":[{"name":"a"}]}`,
		`{"tasks":[{"name":"a","images":"x","trigger":"hourly"}]}`,
		`{"tasks":[{"name":"a","images":"x"},{"name":"a","images":"y"}]}`,
		`{"tasks":`,
	} {
		require.NoError(t, os.WriteFile(path, []byte(bad), 0o644))
		_, err := loadConfig(path)
		require.Error(t, err, bad)
	}
}
