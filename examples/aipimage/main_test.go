package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/cli"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), err
}

// TestCreateExtractRoundTrip drives the CLI as a user would: raw disks
// change between backups, and extract of every point must give back the
// raw disks as they were, byte for byte.
func TestCreateExtractRoundTrip(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypted), func(t *testing.T) {
			if encrypted {
				t.Setenv("STANDBYKIT_PASSPHRASE", "correct horse")
			}
			work, set := t.TempDir(), t.TempDir()
			r := rand.New(rand.NewPCG(1, 2))
			disks := [][]byte{make([]byte, 3<<20), make([]byte, 1<<20+4096)}
			for _, d := range disks {
				for i := 0; i < len(d)/2; i++ {
					d[i] = byte(r.IntN(4) + 'a')
				}
			}
			raw := func(k, d int) string { return filepath.Join(work, fmt.Sprintf("p%d-d%d.raw", k, d)) }
			var history [][][]byte
			var lastFile string
			for k := range 5 {
				if k > 0 {
					for _, d := range disks {
						for range 3 {
							off := r.IntN(len(d) - 10000)
							for i := off; i < off+r.IntN(10000); i++ {
								d[i] = byte(r.Uint32())
							}
						}
					}
				}
				snap := [][]byte{}
				for d := range disks {
					require.NoError(t, os.WriteFile(raw(k, d), disks[d], 0o644))
					snap = append(snap, bytes.Clone(disks[d]))
				}
				history = append(history, snap)
				args := []string{"create", "--out", set}
				if k == 0 {
					args = append(args, "--host", "file01", "--firmware", "efi", "--os", "Rocky Linux 9")
				} else {
					args = append(args, "--parent", lastFile)
				}
				out, err := runCLI(t, append(args, raw(k, 0), raw(k, 1))...)
				require.NoError(t, err)
				require.Contains(t, out, fmt.Sprintf("point %d of set", k))
				lastFile = strings.Fields(out)[1]
				lastFile = strings.TrimSuffix(lastFile, ":")
			}

			out, err := runCLI(t, "info", set)
			require.NoError(t, err)
			require.Contains(t, out, `host "file01"`)
			require.Contains(t, out, "firmware efi")
			require.Equal(t, 5, strings.Count(out, ".skimg"), out)

			out, err = runCLI(t, "verify", set)
			require.NoError(t, err)
			require.Contains(t, out, "ok: 5 points verified")

			for k, snap := range history {
				for d, want := range snap {
					dst := filepath.Join(work, fmt.Sprintf("x%d-%d.raw", k, d))
					_, err := runCLI(t, "extract", "--point", fmt.Sprint(k), "--disk", fmt.Sprint(d), "--out", dst, set)
					require.NoError(t, err)
					got, err := os.ReadFile(dst)
					require.NoError(t, err)
					require.True(t, bytes.Equal(want, got), "point %d disk %d extracted differs", k, d)
				}
			}
		})
	}
}

func TestVerifyReportsCorruption(t *testing.T) {
	work, set := t.TempDir(), t.TempDir()
	disk := bytes.Repeat([]byte("some data "), 100000)
	disk = disk[:len(disk)/512*512]
	require.NoError(t, os.WriteFile(filepath.Join(work, "d.raw"), disk, 0o644))
	out, err := runCLI(t, "create", "--out", set, "--host", "h", filepath.Join(work, "d.raw"))
	require.NoError(t, err)
	file := strings.TrimSuffix(strings.Fields(out)[1], ":")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	b[8192] ^= 0x40
	require.NoError(t, os.WriteFile(file, b, 0o644))
	_, err = runCLI(t, "verify", set)
	require.ErrorContains(t, err, "corrupt")
}

func TestUsageErrors(t *testing.T) {
	_, err := runCLI(t)
	require.Equal(t, cli.ExitUsage, cli.Code(err))
	_, err = runCLI(t, "bogus")
	require.ErrorContains(t, err, "unknown command")
	_, err = runCLI(t, "info", t.TempDir())
	require.ErrorContains(t, err, "no full image")
}

func TestCreateRefusesBadParent(t *testing.T) {
	work, set := t.TempDir(), t.TempDir()
	disk := filepath.Join(work, "d.raw")
	require.NoError(t, os.WriteFile(disk, bytes.Repeat([]byte("x"), 1<<20), 0o644))
	out, err := runCLI(t, "create", "--out", set, "--host", "h", disk)
	require.NoError(t, err)
	full := strings.TrimSuffix(strings.Fields(out)[1], ":")
	out, err = runCLI(t, "create", "--out", set, "--parent", full, disk)
	require.NoError(t, err)
	newest := strings.TrimSuffix(strings.Fields(out)[1], ":")

	_, err = runCLI(t, "create", "--out", set, "--parent", full, disk)
	require.ErrorContains(t, err, "fork", "a second point after the full image")
	notes := filepath.Join(set, "notes.txt")
	require.NoError(t, os.WriteFile(notes, []byte("not an image"), 0o644))
	_, err = runCLI(t, "create", "--out", set, "--parent", notes, disk)
	require.ErrorContains(t, err, "not a usable point")
	_, err = runCLI(t, "create", "--out", set, "--parent", newest, disk, disk)
	require.ErrorContains(t, err, "2 disks given")
}
