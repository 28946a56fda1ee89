package p2v

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/heapprobe"
	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/standbykit/standbykit/p2v/ext4"
	"github.com/standbykit/standbykit/p2v/xfs"
)

// An initramfs with firmware is often larger than a file ReadFile returns
// (Ubuntu's reach 100 MiB); it is read in place from the file system, its
// data streamed, so the controller is still chosen from its drivers and
// reading it costs little memory.
func TestLargeInitramfsStreamed(t *testing.T) {
	oracle.Require(t, "mkfs.ext4")
	oracle.Require(t, "cpio")
	const kernel = "6.1.0-13-amd64"

	// An uncompressed early archive with 72 MiB of incompressible
	// "microcode", then the compressed main archive with the drivers, as
	// dracut and initramfs-tools lay them out.
	early := t.TempDir()
	ucode := filepath.Join(early, "kernel/x86/microcode/GenuineIntel.bin")
	require.NoError(t, os.MkdirAll(filepath.Dir(ucode), 0o755))
	blob := make([]byte, 72<<20)
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i+8 <= len(blob); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			blob[i+k] = byte(v >> (8 * k))
		}
	}
	require.NoError(t, os.WriteFile(ucode, blob, 0o644))
	blob = nil
	cmd := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet")
	cmd.Dir = early
	earlyCpio, err := cmd.Output()
	require.NoError(t, err)

	boot := t.TempDir()
	initrd := "initrd.img-" + kernel
	f, err := os.Create(filepath.Join(boot, initrd))
	require.NoError(t, err)
	_, err = f.Write(earlyCpio)
	require.NoError(t, err)
	earlyCpio = nil
	_, err = f.WriteString(mkInitramfs(t, kernel, "kernel/drivers/scsi/vmw_pvscsi.ko", "kernel/drivers/ata/ahci.ko"))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	img := filepath.Join(t.TempDir(), "boot.img")
	oracle.Run(t, "mkfs.ext4", "-q", "-F", "-d", boot, img, "96M")
	dev, err := os.Open(img)
	require.NoError(t, err)
	defer dev.Close()
	st, err := dev.Stat()
	require.NoError(t, err)

	fsys, ok := openFileSystem(dev, st.Size())
	require.True(t, ok)
	_, err = fsys.ReadFile("/" + initrd)
	require.Error(t, err, "ReadFile returns only small files")

	var plan Plan
	alloc := heapprobe.Allocated(func() { Inspector{}.chooseLinuxController(&plan, fsys, "") })
	require.Empty(t, plan.Warnings)
	require.Equal(t, ControllerPVSCSI, plan.Controller)
	require.Less(t, alloc, uint64(16<<20), "reading a 72 MiB initramfs allocated %d bytes", alloc)

	// The streamed bytes are the file's: compare with debugfs's copy.
	oracle.Require(t, "debugfs")
	out := filepath.Join(t.TempDir(), "initrd")
	oracle.Run(t, "debugfs", "-R", "dump /"+initrd+" "+out, img)
	want, err := os.ReadFile(out)
	require.NoError(t, err)
	rd, err := fsys.OpenFile("/" + initrd)
	require.NoError(t, err)
	var got bytes.Buffer
	_, err = got.ReadFrom(rd)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got.Bytes()), "streamed %d bytes, debugfs %d", got.Len(), len(want))
}

func TestReadRanges(t *testing.T) {
	dev := bytes.NewReader([]byte("0123456789"))
	rd, err := readRanges(dev, []ext4.Range{{Offset: 2, Length: 3}, {Offset: -1, Length: 2, Zero: true}, {Offset: 8, Length: 2}})
	require.NoError(t, err)
	got, err := io.ReadAll(iotest.OneByteReader(rd))
	require.NoError(t, err)
	require.Equal(t, []byte("234\x00\x0089"), got)

	rd, err = readRanges(dev, []xfs.Range{{Offset: 8, Length: 5}})
	require.NoError(t, err)
	_, err = io.ReadAll(rd)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "a range past the device's end")

	for _, bad := range [][]ext4.Range{{{Offset: 0, Length: -1}}, {{Offset: -5, Length: 1}}} {
		_, err := readRanges(dev, bad)
		require.Error(t, err, "%+v", bad)
	}
}
