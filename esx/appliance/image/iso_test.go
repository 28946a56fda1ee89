package image

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// TestBuildISO builds the ISO image of fake boot files and reads its
// boot loader configuration and kernel back with xorriso.
func TestBuildISO(t *testing.T) {
	xorriso := oracle.Require(t, "xorriso")
	for _, f := range []string{IsolinuxBin, LdlinuxC32} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("STANDBYKIT_REQUIRE_ORACLES") == "1" {
				t.Fatalf("%s is required here (apt-get install isolinux syslinux-common): %v", f, err)
			}
			t.Skipf("no %s (apt-get install isolinux syslinux-common)", f)
		}
	}
	k := fakeKernel(t, true)
	out := t.TempDir()
	writer := filepath.Join(t.TempDir(), "writer")
	require.NoError(t, os.WriteFile(writer, []byte("init"), 0o755))
	_, err := Build(context.Background(), Options{Out: out, KernelRoot: k.Root, Writer: writer})
	require.NoError(t, err)

	f, err := BuildISO(context.Background(), out, ESXiCmdline+" standbykit.wait=90")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(out, ISOFile), f.Path)
	assert.Zero(t, f.Size%2048)
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Len(t, entries, 3, "vmlinuz, initrd.img, appliance.iso and nothing else")

	x := t.TempDir()
	cmd := exec.Command(xorriso, "-osirrox", "on", "-indev", f.Path,
		"-extract", "/isolinux/isolinux.cfg", filepath.Join(x, "isolinux.cfg"),
		"-extract", "/vmlinuz", filepath.Join(x, "vmlinuz"),
		"-report_el_torito", "plain")
	report, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", report)
	cfg, err := os.ReadFile(filepath.Join(x, "isolinux.cfg"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "KERNEL /vmlinuz\n  INITRD /initrd.img\n  APPEND console=tty0 quiet panic=-1 standbykit.wait=90\n")
	vmlinuz, err := os.ReadFile(filepath.Join(x, "vmlinuz"))
	require.NoError(t, err)
	assert.Equal(t, "vmlinuz", string(vmlinuz))
	assert.True(t, bytes.Contains(report, []byte("/isolinux/isolinux.bin")), "El Torito boot image: %s", report)

	_, err = BuildISO(context.Background(), out, "a\nb")
	assert.Error(t, err)
}
