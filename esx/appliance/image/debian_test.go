package image_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx/appliance/image"
	"github.com/standbykit/standbykit/internal/kerneltest"
	"github.com/standbykit/standbykit/p2v/initramfs"
)

// TestDebianKernel selects the appliance's modules from Debian's kernel
// package (the closure read from the modules' .modinfo) and builds an
// initramfs with them, read back with p2v/initramfs.
func TestDebianKernel(t *testing.T) {
	k := kerneltest.Kernel(t)
	sel, err := k.Select(image.DefaultModules)
	require.NoError(t, err)
	in := map[string]bool{}
	var names []string
	for _, m := range sel.Modules {
		for _, d := range m.Deps {
			assert.True(t, in[d], "%s is loaded before %s, which needs it", d, m.Name)
		}
		in[m.Name] = true
		names = append(names, m.Name)

		data, err := k.ModuleData(m.Path)
		require.NoError(t, err)
		info, err := image.Modinfo(data)
		require.NoError(t, err, m.Path)
		assert.True(t, strings.HasPrefix(info["vermagic"], k.Version+" "), "%s: vermagic %q", m.Name, info["vermagic"])
	}
	t.Logf("kernel %s: modules %v, built in %v", k.Version, names, sel.Builtin)
	for _, want := range []string{
		"vmw_pvscsi", "mptsas", "mptscsih", "mptbase", "scsi_transport_sas",
		"ahci", "libahci", "libata", "nvme", "nvme_core", "sd_mod", "scsi_mod",
	} {
		assert.True(t, in[want], want)
	}

	writer := filepath.Join(t.TempDir(), "init")
	require.NoError(t, os.WriteFile(writer, []byte("#!/not/really\n"), 0o755))
	res, err := image.Build(context.Background(), image.Options{Out: t.TempDir(), KernelRoot: k.Root, Writer: writer})
	require.NoError(t, err)
	assert.Equal(t, names, res.Modules)
	f, err := os.Open(res.Initrd)
	require.NoError(t, err)
	defer f.Close()
	a, err := initramfs.Read(f, 0)
	require.NoError(t, err)
	assert.ElementsMatch(t, names, a.Modules())
	assert.NotEmpty(t, a.Builtin(), "modules.builtin is copied")
	for _, file := range res.Files {
		t.Logf("%s: %d bytes", filepath.Base(file.Path), file.Size)
	}
}
