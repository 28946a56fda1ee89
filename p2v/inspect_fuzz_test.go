package p2v

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/fuzzimage"
	"github.com/standbykit/standbykit/p2v/ntfs"
)

// fuzzMaxDisk caps the disk a FuzzInspect input stands for. Inputs are
// sparse (internal/fuzzimage), so a large disk costs only what is read.
const fuzzMaxDisk = 64 << 20

// FuzzInspect inspects a whole disk: partition table, file systems, LVM,
// the files Linux inspection reads (initramfs included) and the Windows
// registry, composed as they are for a backup point. Seeds are a small
// Debian-like disk (MBR, ext4 with fstab, grub.cfg, udev rules and an
// initramfs) and a Windows one (MBR, NTFS with SYSTEM and SOFTWARE hives),
// written by TestWriteInspectSeeds. Nothing may panic; a plan must be
// deterministic (the boot point pipeline undoes a point's patches by
// inspecting its bytes again) and its patches must lie on the disk.
//
//	go test ./p2v -run '^$' -fuzz '^FuzzInspect$' -fuzzminimizetime 500x
func FuzzInspect(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		disk := fuzzimage.Decode(data, fuzzMaxDisk)
		ctx := context.Background()
		plan, err := Inspector{}.InspectDisks(ctx, []Disk{disk})
		if err != nil {
			return
		}
		for _, p := range plan.Patches {
			if p.Disk != 0 || p.Offset < 0 || p.Offset+int64(len(p.Data)) > disk.Size() {
				t.Fatalf("a patch of %d bytes at %d on disk %d of a %d-byte disk", len(p.Data), p.Offset, p.Disk, disk.Size())
			}
		}
		first, err := json.Marshal(plan)
		if err != nil {
			t.Fatalf("plan does not marshal: %v", err)
		}
		again, err := Inspector{}.InspectDisks(ctx, []Disk{disk})
		if err != nil {
			t.Fatalf("second inspection failed: %v", err)
		}
		second, _ := json.Marshal(again)
		if !bytes.Equal(first, second) {
			t.Fatalf("inspection is not deterministic:\n%s\n%s", first, second)
		}
	})
}

// TestWriteInspectSeeds writes FuzzInspect's seeds, made with mkfs.ext4,
// sfdisk, cpio, ntfs-3g and hivexsh, when STANDBYKIT_WRITE_SEEDS=1.
func TestWriteInspectSeeds(t *testing.T) {
	if os.Getenv("STANDBYKIT_WRITE_SEEDS") != "1" {
		t.Skip("set STANDBYKIT_WRITE_SEEDS=1 to regenerate testdata/fuzz/FuzzInspect")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzInspect")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	// A seed holds only the bytes inspection reads: a Windows volume's
	// log file and free space are megabytes nobody reads.
	write := func(name string, disk []byte, skip ...[2]int64) {
		rec := &readRecorder{r: bytes.NewReader(disk), size: int64(len(disk))}
		_, err := Inspector{}.InspectDisks(context.Background(), []Disk{rec})
		require.NoError(t, err)
		var chunks []fuzzimage.Chunk
		kept := bytes.Clone(disk)
		for _, r := range skip {
			clear(kept[r[0]:r[1]])
		}
		for _, r := range rec.merged() {
			chunks = append(chunks, fuzzimage.NonZero(r[0], kept[r[0]:r[1]])...)
		}
		in := fuzzimage.Encode(int64(len(disk)), chunks)
		plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{fuzzimage.Decode(in, fuzzMaxDisk)})
		require.NoError(t, err)
		require.NotEmpty(t, plan.Patches, "the seed keeps what inspection needs: %v", plan.Warnings)
		t.Logf("%s: a %d-byte disk as a %d-byte input, %d patches", name, len(disk), len(in), len(plan.Patches))
		require.NoError(t, fuzzimage.WriteCorpusFile(filepath.Join(dir, name), in))
	}

	root := mkext4(t, map[string]string{
		"etc/os-release": "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
		"etc/fstab":      "/dev/sda1 / ext4 errors=remount-ro 0 1\n",
		"etc/udev/rules.d/70-persistent-net.rules": "SUBSYSTEM==\"net\", ATTR{address}==\"00:25:90:aa:bb:cc\", NAME=\"eth0\"\n",
		"boot/grub/grub.cfg":                       "menuentry 'Debian' {\n\tlinux /boot/vmlinuz-6.1.0-13-amd64 root=/dev/sda1 ro\n\tinitrd /boot/initrd.img-6.1.0-13-amd64\n}\n",
		"boot/initrd.img-6.1.0-13-amd64":           mkInitramfs(t, "6.1.0-13-amd64", "kernel/drivers/ata/ahci.ko"),
	}, uuidRoot, 2)
	write("debian-mbr", partitionedDisk(t, "label: dos\nstart=2048, type=83, bootable\n", 4, root))

	software := hive(t, softwareScript)
	system := hive(t, systemScript(false))
	disk, start := diskWith(t, "label: dos\nstart=2048, size=16384, type=7, bootable\n", 1, windowsVolume(t, system, software, false))
	// The upcase table is 128 KiB, read whole; the names looked up are
	// ASCII, so its first 128 entries are all a seed needs.
	vol, err := ntfs.Open(bytes.NewReader(disk[start:]), int64(len(disk))-start)
	require.NoError(t, err)
	upcase, err := vol.Lookup("/$UpCase")
	require.NoError(t, err)
	ranges, err := upcase.Ranges()
	require.NoError(t, err)
	var skip [][2]int64
	pos := int64(0)
	for _, r := range ranges {
		from := max(r.Offset, r.Offset+256-pos)
		if from < r.End() {
			skip = append(skip, [2]int64{start + from, start + r.End()})
		}
		pos += r.Length
	}
	write("windows-mbr", disk, skip...)
}

// readRecorder is a disk that notes the ranges read from it.
type readRecorder struct {
	r     io.ReaderAt
	size  int64
	reads [][2]int64
}

func (d *readRecorder) Size() int64 { return d.size }

func (d *readRecorder) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.r.ReadAt(p, off)
	if n > 0 {
		d.reads = append(d.reads, [2]int64{off, off + int64(n)})
	}
	return n, err
}

// merged returns the ranges read, sorted and merged.
func (d *readRecorder) merged() [][2]int64 {
	rs := slices.Clone(d.reads)
	slices.SortFunc(rs, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	var out [][2]int64
	for _, r := range rs {
		if k := len(out); k > 0 && r[0] <= out[k-1][1] {
			out[k-1][1] = max(out[k-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}
