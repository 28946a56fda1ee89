package image

import (
	"bytes"
	"errors"
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/standbykit/standbykit/p2v/initramfs"
)

// sampleArchive writes an archive with one entry of each kind.
func sampleArchive(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	c := NewCPIO(&b)
	c.MTime = 1700000000
	require.NoError(t, c.Dir("dev", 0o755))
	require.NoError(t, c.CharDevice("dev/console", 0o600, 5, 1))
	require.NoError(t, c.BlockDevice("/dev/sda", 0o600, 8, 0))
	require.NoError(t, c.File("/init", 0o755, []byte("#!/bin/true\n")))
	require.NoError(t, c.File("lib/modules/6.1.0-57-amd64/kernel/drivers/scsi/vmw_pvscsi.ko", 0o644, bytes.Repeat([]byte{0xEE}, 4097)))
	require.NoError(t, c.File("empty", 0o644, nil))
	require.NoError(t, c.Symlink("sbin/init", "../init"))
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "a second Close does nothing")
	return b.Bytes()
}

var sampleNames = []string{
	"dev", "dev/console", "dev/sda", "init",
	"lib", "lib/modules", "lib/modules/6.1.0-57-amd64", "lib/modules/6.1.0-57-amd64/kernel",
	"lib/modules/6.1.0-57-amd64/kernel/drivers", "lib/modules/6.1.0-57-amd64/kernel/drivers/scsi",
	"lib/modules/6.1.0-57-amd64/kernel/drivers/scsi/vmw_pvscsi.ko",
	"empty", "sbin", "sbin/init",
}

func TestCPIO(t *testing.T) {
	data := sampleArchive(t)
	assert.Zero(t, len(data)%4)
	assert.True(t, bytes.HasPrefix(data, []byte("070701")))

	// p2v/initramfs, an independent reader, sees what was written.
	a, err := initramfs.Read(bytes.NewReader(data), 0)
	require.NoError(t, err)
	var names []string
	for _, e := range a.Entries {
		names = append(names, e.Name)
	}
	assert.Equal(t, sampleNames, names)
	for name, want := range map[string]fs.FileMode{
		"dev":         fs.ModeDir | 0o755,
		"dev/console": fs.ModeDevice | fs.ModeCharDevice | 0o600,
		"dev/sda":     fs.ModeDevice | 0o600,
		"init":        0o755,
		"lib/modules": fs.ModeDir | 0o755,
		"sbin/init":   fs.ModeSymlink | 0o777,
	} {
		e, ok := a.Lookup(name)
		require.True(t, ok, name)
		assert.Equal(t, want, e.Mode, name)
	}
	e, _ := a.Lookup("lib/modules/6.1.0-57-amd64/kernel/drivers/scsi/vmw_pvscsi.ko")
	assert.Equal(t, int64(4097), e.Size)
	e, _ = a.Lookup("sbin/init")
	assert.Equal(t, "../init", e.LinkTarget)
	assert.Equal(t, []string{"vmw_pvscsi"}, a.Modules())
	init, err := initramfs.ReadFile(bytes.NewReader(data), 0, "init")
	require.NoError(t, err)
	assert.Equal(t, "#!/bin/true\n", string(init))

	// So does the cpio tool.
	oracle.Require(t, "cpio")
	list := exec.Command("cpio", "-it", "--quiet")
	list.Stdin = bytes.NewReader(data)
	out, err := list.Output()
	require.NoError(t, err)
	assert.Equal(t, sampleNames, strings.Fields(string(out)))
	extract := exec.Command("cpio", "-i", "--quiet", "--to-stdout", "init")
	extract.Stdin = bytes.NewReader(data)
	out, err = extract.Output()
	require.NoError(t, err)
	assert.Equal(t, "#!/bin/true\n", string(out))
}

func TestCPIOErrors(t *testing.T) {
	for _, name := range []string{"", "/", ".", "..", "../etc", "a/../b", "a//b", "a/", "x\x00y"} {
		c := NewCPIO(&bytes.Buffer{})
		assert.Error(t, c.File(name, 0o644, nil), "%q", name)
		assert.Error(t, c.Close(), "the first error sticks")
	}
	c := NewCPIO(&bytes.Buffer{})
	require.NoError(t, c.File("a/b", 0o644, nil))
	assert.ErrorContains(t, c.File("a/b", 0o644, nil), "written twice")

	c = NewCPIO(&bytes.Buffer{})
	require.NoError(t, c.Dir("a", 0o700))
	require.NoError(t, c.Dir("a", 0o700), "a directory twice is one directory")
	assert.ErrorContains(t, c.File("a", 0o644, nil), "written twice")

	c = NewCPIO(&bytes.Buffer{})
	assert.Error(t, c.Symlink("l", ""))

	c = NewCPIO(&bytes.Buffer{})
	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.File("x", 0o644, nil), errCPIOClosed)

	c = NewCPIO(failingWriter{})
	require.NoError(t, c.File("x", 0o644, []byte("data")), "buffered")
	assert.ErrorContains(t, c.Close(), "disk full")
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
