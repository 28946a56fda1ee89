package p2v

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

type fileDisk struct {
	*os.File
	size int64
}

func (f fileDisk) Size() int64 { return f.size }

// RHEL 9 with root on XFS: the system, guest and controller are found;
// fstab still names a device, and the plan says XFS is not patched.
func TestInspectRootOnXFS(t *testing.T) {
	oracle.Require(t, "mkfs.xfs")
	dir := t.TempDir()
	src := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	proto := fmt.Sprintf("/dev/null\n0 0\nd--755 0 0\netc d--755 0 0\nos-release ---644 0 0 %s\nfstab ---644 0 0 %s\n$\nboot d--555 0 0\ninitramfs-5.14.0-284.el9.x86_64.img ---600 0 0 %s\n$\n$\n",
		src("os-release", "ID=\"rhel\"\nVERSION_ID=\"9.2\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.2 (Plow)\"\n"),
		src("fstab", "/dev/sda1 / xfs defaults 0 0\n"),
		src("initrd", mkInitramfs(t, "5.14.0-284.el9.x86_64", "kernel/drivers/message/fusion/mptsas.ko.xz")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "proto"), []byte(proto), 0o644))
	fsImg := filepath.Join(dir, "root.xfs")
	require.NoError(t, os.WriteFile(fsImg, nil, 0o644))
	require.NoError(t, os.Truncate(fsImg, 320<<20))
	oracle.Run(t, "mkfs.xfs", "-q", "-f", "-p", filepath.Join(dir, "proto"), "-d", "name="+fsImg+",size=320m")

	// An MBR disk with the file system at 1 MiB.
	sfdisk := requireSfdisk(t)
	diskPath := filepath.Join(dir, "disk.img")
	require.NoError(t, os.WriteFile(diskPath, nil, 0o644))
	require.NoError(t, os.Truncate(diskPath, 330<<20))
	cmd := exec.Command(sfdisk, "-q", diskPath)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, type=83, bootable\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	disk, err := os.OpenFile(diskPath, os.O_RDWR, 0)
	require.NoError(t, err)
	defer disk.Close()
	fsFile, err := os.Open(fsImg)
	require.NoError(t, err)
	defer fsFile.Close()
	_, err = io.Copy(io.NewOffsetWriter(disk, 1<<20), fsFile)
	require.NoError(t, err)

	plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{fileDisk{disk, 330 << 20}})
	require.NoError(t, err)
	require.Equal(t, "rhel9_64Guest", plan.GuestID)
	require.Equal(t, ControllerLSILogicSAS, plan.Controller, "%v", plan.Warnings)
	require.Empty(t, plan.Patches)
	require.Contains(t, strings.Join(plan.Warnings, "\n"), "/etc/fstab: cannot be rewritten offline (files on XFS are read, not rewritten")
}
