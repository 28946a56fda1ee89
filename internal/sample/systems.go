package sample

import (
	"bytes"
	"embed"
	"fmt"
	"io"
	"math/rand/v2"
	"path"

	"github.com/ulikunitz/xz"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/p2v"
	"github.com/standbykit/standbykit/p2v/ext4"
)

// The sample systems' disks, made by fixtures/make-fixtures.sh.
//
//go:embed fixtures/linux.img.xz fixtures/windows.img.xz
var fixtures embed.FS

// System is what a sample disk holds.
type System string

const (
	// Data is a disk with an MBR partition table and one partition of
	// mixed data but no file system: P2V finds nothing to do. Its
	// incrementals change 1-3% of the disk in scattered runs.
	Data System = ""
	// Linux is a miniature Debian 12 web server (16 MiB disk, BIOS, MBR):
	// an ext4 root whose /etc/fstab and /boot/grub/grub.cfg name the
	// disks /dev/sda1 and /dev/sda2 (swap), udev rules that pin the NICs
	// to their MAC addresses, and an initramfs with the physical server's
	// drivers (hpsa, ahci; no vmw_pvscsi). Its incrementals append to
	// /var/log/syslog and rewrite pages of a PostgreSQL table file.
	Linux System = "linux"
	// Windows is a miniature Windows Server 2019 file server (16 MiB disk,
	// UEFI, GPT with an EFI system partition, a Microsoft reserved one and
	// NTFS C:): SYSTEM and SOFTWARE hives in which the boot driver is the
	// physical RAID's (HpCISSs2), LSI SAS, AHCI and NVMe drivers are not
	// started at boot, and the disk class's UpperFilters names the filter
	// of an uninstalled backup agent (bkagtflt). Its incrementals rewrite
	// a chunk of System.evtx and rows of a ledger, and count a boot in the
	// SYSTEM hive (Memory Management\PrefetchParameters\BootId).
	Windows System = "windows"
)

// Systems are the sample operating systems.
func Systems() []System { return []System{Linux, Windows} }

// FixtureSize is the size of the Linux and Windows sample disks.
const FixtureSize = 16 << 20

func (s System) String() string {
	if s == Data {
		return "data"
	}
	return string(s)
}

func (s System) machine() aipimage.Machine {
	switch s {
	case Linux:
		return aipimage.Machine{Hostname: "web01", OSHint: "Debian GNU/Linux 12 (bookworm)", Firmware: aipimage.FirmwareBIOS}
	case Windows:
		return aipimage.Machine{Hostname: "fs01", OSHint: "Windows Server 2019 Standard", Firmware: aipimage.FirmwareUEFI}
	}
	return aipimage.Machine{Hostname: "sample-web01", OSHint: "Linux (sample data)", Firmware: aipimage.FirmwareBIOS}
}

// Disk returns a fresh copy of the system's disk as the full image holds
// it.
func (s System) Disk() ([]byte, error) {
	if s != Linux && s != Windows {
		return nil, fmt.Errorf("sample: no fixture for system %q", s)
	}
	f, err := fixtures.Open(path.Join("fixtures", string(s)+".img.xz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := xz.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("sample: %s fixture: %w", s, err)
	}
	disk := make([]byte, FixtureSize)
	if _, err := io.ReadFull(zr, disk); err != nil {
		return nil, fmt.Errorf("sample: %s fixture: %w", s, err)
	}
	return disk, nil
}

// changer changes a sample disk in place as a day of use does.
type changer interface {
	// change alters disk for the point of sequence seq and returns the
	// byte ranges it changed.
	change(r *rand.Rand, disk []byte, seq int) ([]aipimage.Extent, error)
}

// changerFor finds the files a system's days change on disk.
func (s System) changerFor(disk []byte) (changer, error) {
	switch s {
	case Linux:
		return newLinuxChanger(disk)
	case Windows:
		return newWindowsChanger(disk)
	}
	return dataChanger{}, nil
}

// systemOf tells which sample system a disk holds, by the files its
// incrementals change.
func systemOf(disk []byte) System {
	for _, s := range Systems() {
		if _, err := s.changerFor(disk); err == nil {
			return s
		}
	}
	return Data
}

type dataChanger struct{}

func (dataChanger) change(r *rand.Rand, disk []byte, _ int) ([]aipimage.Extent, error) {
	return mutate(r, disk), nil
}

// partition finds the partition of a sample disk a system lives on.
func partition(disk io.ReaderAt, size int64, match func(p2v.Partition) bool) (p2v.Partition, error) {
	t, err := p2v.ReadPartitionTable(disk, size, 512)
	if err != nil {
		return p2v.Partition{}, err
	}
	for _, p := range t.Partitions {
		if match(p) {
			return p, nil
		}
	}
	return p2v.Partition{}, fmt.Errorf("sample: the disk has no such partition")
}

func linuxRoot(p p2v.Partition) bool { return p.Number == 1 && p.Type == "83" }

func windowsC(p p2v.Partition) bool { return p.Type == p2v.GPTTypeMSBasicData }

const (
	syslogPath = "/var/log/syslog"
	tablePath  = "/var/lib/postgresql/15/main/base/16384/16397"
	evtxPath   = "Windows/System32/winevt/Logs/System.evtx"
	ledgerPath = "Shares/Finance/ledger-2026.csv"
	systemPath = "Windows/System32/config/SYSTEM"
	bootIDKey  = `ControlSet001\Control\Session Manager\Memory Management\PrefetchParameters`
)

// linuxFile is where a file's bytes lie on the disk.
type linuxFile struct {
	base   int64 // the file system's offset on the disk
	ranges []ext4.Range
	size   int64
}

func openLinuxFile(fs *ext4.FS, base int64, name string) (linuxFile, error) {
	rs, err := fs.FileRanges(name)
	if err != nil {
		return linuxFile{}, err
	}
	f := linuxFile{base: base, ranges: rs}
	for _, r := range rs {
		if r.Zero {
			return linuxFile{}, fmt.Errorf("sample: %s has a hole", name)
		}
		f.size += r.Length
	}
	return f, nil
}

// writeAt writes data at offset off of the file, in its own blocks.
func (f linuxFile) writeAt(disk []byte, off int64, data []byte) []aipimage.Extent {
	var out []aipimage.Extent
	pos := int64(0)
	for _, r := range f.ranges {
		lo, hi := max(off, pos), min(off+int64(len(data)), pos+r.Length)
		if lo < hi {
			at := f.base + r.Offset + lo - pos
			copy(disk[at:at+hi-lo], data[lo-off:hi-off])
			out = append(out, aipimage.Extent{Off: at, Len: hi - lo})
		}
		pos += r.Length
	}
	return out
}

type linuxChanger struct{ syslog, table linuxFile }

func newLinuxChanger(disk []byte) (*linuxChanger, error) {
	r := bytes.NewReader(disk)
	p, err := partition(r, int64(len(disk)), linuxRoot)
	if err != nil {
		return nil, err
	}
	fs, err := ext4.Open(io.NewSectionReader(r, p.Start, p.Size), p.Size)
	if err != nil {
		return nil, err
	}
	c := &linuxChanger{}
	if c.syslog, err = openLinuxFile(fs, p.Start, syslogPath); err != nil {
		return nil, err
	}
	if c.table, err = openLinuxFile(fs, p.Start, tablePath); err != nil {
		return nil, err
	}
	return c, nil
}

// change writes the day's log lines over an older stretch of the log (a
// log rotated in place, to keep the file's size) and rewrites a few
// 8 KiB pages of the table.
func (c *linuxChanger) change(r *rand.Rand, disk []byte, seq int) ([]aipimage.Extent, error) {
	n := int64(8<<10 + r.IntN(16<<10))
	off := int64(seq) * 20000 % (c.syslog.size - n)
	changed := c.syslog.writeAt(disk, off, logLines(int(n), func(i int) string {
		return fmt.Sprintf("Nov %02d %02d:%02d:%02d web01 %s\n", 1+seq%30, i/60%24, i%60, r.IntN(60), syslogMessages[r.IntN(len(syslogMessages))])
	}))
	const page = 8 << 10
	for range 2 + r.IntN(4) {
		off := r.Int64N(c.table.size/page) * page
		changed = append(changed, c.table.writeAt(disk, off, logLines(page, func(i int) string {
			return fmt.Sprintf("%08d|customer-%05d|%s|%10.2f|day %d\n", r.IntN(1e8), r.IntN(9973), []string{"open", "paid", "late"}[r.IntN(3)], r.Float64()*1e4, seq)
		}))...)
	}
	return changed, nil
}

var syslogMessages = []string{
	"systemd[1]: Started Daily apt upgrade and clean activities.",
	"CRON[2211]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
	"nginx[812]: GET /index.html 200 612",
	"sshd[3120]: Accepted publickey for deploy from 10.0.8.21 port 52144",
	"postgres[901]: checkpoint complete: wrote 212 buffers (1.3%)",
}

// logLines returns exactly n bytes of lines from line, the last one
// cut to fit and ended by a newline.
func logLines(n int, line func(i int) string) []byte {
	b := make([]byte, 0, n+200)
	for i := 0; len(b) < n; i++ {
		b = append(b, line(i)...)
	}
	b = b[:n]
	b[n-1] = '\n'
	return b
}
