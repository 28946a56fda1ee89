package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/sample"
)

func TestInspectImagePointAndRawDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sample.Write(ctx, dir, sample.Options{DiskSize: 4 << 20, Incrementals: 1, KeepContent: true})
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"--images", dir}, &out))
	// The sample disk has an MBR and no Windows: BIOS, no patches.
	require.Contains(t, out.String(), "firmware:   bios")
	require.Contains(t, out.String(), "no Windows or Linux system")

	raw := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(raw, s.Disks[1], 0o644))
	out.Reset()
	require.NoError(t, run(ctx, []string{"--json", raw}, &out))
	require.Contains(t, out.String(), `"firmware": "bios"`)
	require.Contains(t, out.String(), `"patches": []`)

	require.Error(t, run(ctx, nil, &out))
	require.Error(t, run(ctx, []string{"--images", dir, "--point", "9"}, &out))
}
