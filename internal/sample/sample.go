// Package sample builds small, realistic image sets for demos and tests: a
// full image of one disk and incrementals that change it as days of use
// do. The disk holds a miniature Linux or Windows system (System), made
// by fixtures/make-fixtures.sh with the tools that make the real thing,
// on which P2V has real work to do; or, by default, a partition of mixed
// data.
package sample

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/standbykit/standbykit/aipimage"
)

// Options shapes the sample. Zero values give a 64 MiB data disk and 6
// incrementals.
type Options struct {
	// System is what the disk holds; the Linux and Windows disks have
	// FixtureSize bytes.
	System       System
	DiskSize     int64 // bytes, a multiple of 1 MiB; 0 or FixtureSize for a system
	Incrementals int
	Seed         uint64
	Start        time.Time // time of the full image; each point is a day later
	Passphrase   []byte
	// KeepContent keeps every point's disk content in Set.Disks (memory:
	// DiskSize per point); otherwise only digests are kept.
	KeepContent bool
}

// Set is a written sample: its folder and, per point, what the image chain
// must reproduce.
type Set struct {
	Dir     string
	System  System
	Points  []aipimage.PointInfo
	Digests [][sha256.Size]byte // SHA-256 of disk 0 at point k
	Disks   [][]byte            // disk 0's content at point k, with KeepContent
}

func (s *Set) record(opts Options, info aipimage.PointInfo, disk []byte) {
	s.Points = append(s.Points, info)
	s.Digests = append(s.Digests, sha256.Sum256(disk))
	if opts.KeepContent {
		s.Disks = append(s.Disks, bytes.Clone(disk))
	}
}

// Write creates the sample image set in dir.
func Write(ctx context.Context, dir string, opts Options) (*Set, error) {
	if opts.Incrementals == 0 {
		opts.Incrementals = 6
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	}
	r := rand.New(rand.NewPCG(opts.Seed, 0x5eed))
	disk, err := firstDisk(r, opts)
	if err != nil {
		return nil, err
	}
	days, err := opts.System.changerFor(disk)
	if err != nil {
		return nil, fmt.Errorf("sample: %s disk: %w", opts.System, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	machine := opts.System.machine()
	wopts := &aipimage.WriterOptions{Passphrase: opts.Passphrase, ScryptN: 1 << 12, Time: opts.Start, SetID: aipimage.NewID()}
	path := filepath.Join(dir, aipimage.FileName(aipimage.PointInfo{SetID: wopts.SetID, Machine: machine}))
	info, err := aipimage.WriteFull(ctx, path, machine, []aipimage.DiskSource{{
		Info:    aipimage.DiskInfo{Size: int64(len(disk)), SectorSize: 512, Label: "sample disk"},
		Content: bytes.NewReader(disk),
	}}, wopts)
	if err != nil {
		return nil, err
	}
	s := &Set{Dir: dir, System: opts.System}
	s.record(opts, info, disk)
	for k := 1; k <= opts.Incrementals; k++ {
		changed, err := days.change(r, disk, k)
		if err != nil {
			return nil, fmt.Errorf("sample: changing the %s disk for point %d: %w", opts.System, k, err)
		}
		wopts.Time = opts.Start.Add(time.Duration(k) * 24 * time.Hour)
		next := info
		next.Sequence = k
		info, err = aipimage.WriteIncremental(ctx, filepath.Join(dir, aipimage.FileName(next)), info,
			[]aipimage.DiskSource{{Content: bytes.NewReader(disk), Changed: changed}}, wopts)
		if err != nil {
			return nil, err
		}
		s.record(opts, info, disk)
	}
	return s, nil
}

// firstDisk is the disk of the full image.
func firstDisk(r *rand.Rand, opts Options) ([]byte, error) {
	if opts.System != Data {
		if opts.DiskSize != 0 && opts.DiskSize != FixtureSize {
			return nil, fmt.Errorf("sample: the %s disk has %d bytes, not %d", opts.System, FixtureSize, opts.DiskSize)
		}
		return opts.System.Disk()
	}
	if opts.DiskSize == 0 {
		opts.DiskSize = 64 << 20
	}
	if opts.DiskSize%(1<<20) != 0 || opts.DiskSize < 2<<20 {
		return nil, fmt.Errorf("sample: disk size %d is not a multiple of 1 MiB of at least 2 MiB", opts.DiskSize)
	}
	disk := make([]byte, opts.DiskSize)
	writeMBR(disk)
	// The partition starts at 1 MiB; fill 60% of it, leave the rest free.
	part := disk[1<<20:]
	fill(r, part[:len(part)*6/10])
	return disk, nil
}

// writeMBR writes a DOS partition table with one Linux partition from
// 1 MiB to the end of the disk.
func writeMBR(disk []byte) {
	binary.LittleEndian.PutUint32(disk[440:], 0x5354424b) // disk signature
	e := disk[446:462]
	e[0] = 0x80 // active
	e[4] = 0x83 // Linux
	first := uint32(2048)
	binary.LittleEndian.PutUint32(e[8:], first)
	binary.LittleEndian.PutUint32(e[12:], uint32(len(disk)/512)-first)
	e[1], e[2], e[3] = 0xfe, 0xff, 0xff // CHS: beyond 8 GB convention
	e[5], e[6], e[7] = 0xfe, 0xff, 0xff
	disk[510], disk[511] = 0x55, 0xaa
}

// fill writes file-system-like content: text, binary, and zero runs.
func fill(r *rand.Rand, p []byte) {
	words := []string{"server ", "backup ", "config ", "log: ok\n", "0x00ff ", "user=", "standby "}
	for i := 0; i < len(p); {
		n := min(len(p)-i, 4096*(1+r.IntN(16)))
		switch r.IntN(4) {
		case 0:
			clear(p[i : i+n])
		case 1:
			for j := i; j < i+n; j++ {
				p[j] = byte(r.Uint32())
			}
		default:
			for j := i; j < i+n; {
				j += copy(p[j:i+n], words[r.IntN(len(words))])
			}
		}
		i += n
	}
}

// mutate changes 1-3% of the partition in scattered runs, as a day of use
// does, and returns the changed ranges.
func mutate(r *rand.Rand, disk []byte) []aipimage.Extent {
	var changed []aipimage.Extent
	budget := int64(len(disk)) / 100 * int64(1+r.IntN(3))
	for budget > 0 {
		n := min(budget, 4096*(1+r.Int64N(32)))
		off := 1<<20 + r.Int64N(int64(len(disk))-1<<20-n)/4096*4096
		fill(r, disk[off:off+n])
		changed = append(changed, aipimage.Extent{Off: off, Len: n})
		budget -= n
	}
	return changed
}

// Extend appends n incrementals to the sample set in dir, as new backups
// arriving later would, and returns the new points. A Linux or Windows
// sample's files change as in Write.
func Extend(ctx context.Context, dir string, n int, seed uint64, passphrase []byte) ([]aipimage.PointInfo, error) {
	info, disk, err := newest(dir, passphrase)
	if err != nil {
		return nil, err
	}
	days, err := systemOf(disk).changerFor(disk)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, uint64(info.Sequence)))
	var out []aipimage.PointInfo
	for range n {
		changed, err := days.change(r, disk, info.Sequence+1)
		if err != nil {
			return out, err
		}
		next := info
		next.Sequence++
		info, err = aipimage.WriteIncremental(ctx, filepath.Join(dir, aipimage.FileName(next)), info,
			[]aipimage.DiskSource{{Content: bytes.NewReader(disk), Changed: changed}},
			&aipimage.WriterOptions{Passphrase: passphrase, Time: info.Time.Add(24 * time.Hour)})
		if err != nil {
			return out, err
		}
		out = append(out, info)
	}
	return out, nil
}

// newest reads the newest point of the set in dir and its disk 0.
func newest(dir string, passphrase []byte) (aipimage.PointInfo, []byte, error) {
	set, err := aipimage.OpenDir(dir, &aipimage.OpenOptions{Passphrase: passphrase})
	if err != nil {
		return aipimage.PointInfo{}, nil, err
	}
	defer set.Close()
	points := set.Points()
	p, err := set.Point(len(points) - 1)
	if err != nil {
		return aipimage.PointInfo{}, nil, err
	}
	src, err := p.Disk(0)
	if err != nil {
		return aipimage.PointInfo{}, nil, err
	}
	disk := make([]byte, src.Size())
	if _, err := src.ReadAt(disk, 0); err != nil {
		return aipimage.PointInfo{}, nil, err
	}
	return points[len(points)-1], disk, nil
}

// ExtendFull writes a new full image after the newest point of the sample
// set in dir, as a backup schedule's weekly "active full" would: the
// newest content with a day's changes, starting a new chain.
func ExtendFull(ctx context.Context, dir string, seed uint64, passphrase []byte) (aipimage.PointInfo, error) {
	info, disk, err := newest(dir, passphrase)
	if err != nil {
		return aipimage.PointInfo{}, err
	}
	mutate(rand.New(rand.NewPCG(seed, uint64(info.Sequence))), disk)
	set, err := aipimage.OpenDir(dir, &aipimage.OpenOptions{Passphrase: passphrase})
	if err != nil {
		return aipimage.PointInfo{}, err
	}
	defer set.Close()
	return aipimage.WriteFullAfter(ctx, set, dir, info.Machine, []aipimage.DiskSource{{
		Info:    aipimage.DiskInfo{Size: int64(len(disk)), SectorSize: 512, Label: "sample disk"},
		Content: bytes.NewReader(disk),
	}}, &aipimage.WriterOptions{Passphrase: passphrase, ScryptN: 1 << 12, Time: info.Time.Add(24 * time.Hour)})
}

// ExtendResized writes an incremental after the newest point of the sample
// set in dir whose disk was resized to size bytes (a multiple of 1 MiB):
// grown with data in the new part, or shrunk.
func ExtendResized(ctx context.Context, dir string, size int64, seed uint64, passphrase []byte) (aipimage.PointInfo, error) {
	if size%(1<<20) != 0 || size < 2<<20 {
		return aipimage.PointInfo{}, fmt.Errorf("sample: disk size %d is not a multiple of 1 MiB of at least 2 MiB", size)
	}
	info, disk, err := newest(dir, passphrase)
	if err != nil {
		return aipimage.PointInfo{}, err
	}
	r := rand.New(rand.NewPCG(seed, uint64(info.Sequence)))
	old := int64(len(disk))
	if size > old {
		disk = append(disk, make([]byte, size-old)...)
		fill(r, disk[old:old+(size-old)/2])
	} else {
		disk = disk[:size]
	}
	writeMBR(disk) // the partition table follows the disk, as a resize tool would make it
	next := info
	next.Sequence++
	return aipimage.WriteIncremental(ctx, filepath.Join(dir, aipimage.FileName(next)), info,
		[]aipimage.DiskSource{{Content: bytes.NewReader(disk), Changed: []aipimage.Extent{{Off: 0, Len: 512}}}},
		&aipimage.WriterOptions{Passphrase: passphrase, Resized: true, Time: info.Time.Add(24 * time.Hour)})
}
