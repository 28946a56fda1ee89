package sample

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/p2v/ntfs"
	"github.com/standbykit/standbykit/p2v/regf"
)

// windowsChanger changes the Windows sample's files through their place
// on the NTFS volume.
type windowsChanger struct {
	base               int64 // the volume's offset on the disk
	evtx, ledger, hive *ntfs.File
}

func newWindowsChanger(disk []byte) (*windowsChanger, error) {
	r := bytes.NewReader(disk)
	p, err := partition(r, int64(len(disk)), windowsC)
	if err != nil {
		return nil, err
	}
	vol, err := ntfs.Open(io.NewSectionReader(r, p.Start, p.Size), p.Size)
	if err != nil {
		return nil, err
	}
	c := &windowsChanger{base: p.Start}
	for _, f := range []struct {
		file **ntfs.File
		path string
	}{{&c.evtx, evtxPath}, {&c.ledger, ledgerPath}, {&c.hive, systemPath}} {
		if *f.file, err = vol.Lookup(f.path); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// writeAt writes data at offset off of f, in its own clusters.
func (c *windowsChanger) writeAt(disk []byte, f *ntfs.File, off int64, data []byte) ([]aipimage.Extent, error) {
	ps, err := f.PatchAt(off, data)
	if err != nil {
		return nil, fmt.Errorf("sample: %s: %w", f.Name(), err)
	}
	var out []aipimage.Extent
	for _, p := range ps {
		copy(disk[c.base+p.Offset:], p.Data)
		out = append(out, aipimage.Extent{Off: c.base + p.Offset, Len: int64(len(p.Data))})
	}
	return out, nil
}

// change writes a new 64 KiB chunk of events over the oldest (the event
// log is circular), rewrites a few stretches of ledger rows and counts a
// boot in the SYSTEM hive, as the night's patch reboot does.
func (c *windowsChanger) change(r *rand.Rand, disk []byte, seq int) ([]aipimage.Extent, error) {
	const chunk = 64 << 10
	off := int64(seq) % (c.evtx.Size() / chunk) * chunk
	changed, err := c.writeAt(disk, c.evtx, off, logLines(chunk, func(i int) string {
		return fmt.Sprintf("ElfChnk record %06d Service Control Manager 7036 day %d: the %s service entered the %s state.\n",
			seq*1000+i, seq, []string{"Windows Update", "Print Spooler", "DFS Replication"}[r.IntN(3)], []string{"running", "stopped"}[r.IntN(2)])
	}))
	if err != nil {
		return nil, err
	}
	for range 1 + r.IntN(3) {
		n := int64(2<<10 + r.IntN(6<<10))
		off := r.Int64N(c.ledger.Size() - n)
		e, err := c.writeAt(disk, c.ledger, off, logLines(int(n), func(i int) string {
			return fmt.Sprintf("2026-11-%02d,%06d,%s,%9.2f,EUR\n", 1+seq%30, r.IntN(1e6), []string{"ACME Supplies", "Northwind", "Contoso"}[r.IntN(3)], r.Float64()*1e4)
		}))
		if err != nil {
			return nil, err
		}
		changed = append(changed, e...)
	}
	e, err := c.countBoot(disk)
	if err != nil {
		return nil, err
	}
	return append(changed, e...), nil
}

// countBoot adds one to the SYSTEM hive's BootId, in place.
func (c *windowsChanger) countBoot(disk []byte) ([]aipimage.Extent, error) {
	b, err := c.hive.ReadAll()
	if err != nil {
		return nil, err
	}
	h, err := regf.Open(b)
	if err != nil {
		return nil, fmt.Errorf("sample: SYSTEM hive: %w", err)
	}
	k, err := h.Key(bootIDKey)
	if err != nil {
		return nil, err
	}
	v, err := k.Value("BootId")
	if err != nil {
		return nil, err
	}
	id, err := v.DWORD()
	if err != nil {
		return nil, err
	}
	ps, err := h.SetDWORD(bootIDKey, "BootId", id+1)
	if err != nil {
		return nil, err
	}
	var changed []aipimage.Extent
	for _, p := range ps {
		e, err := c.writeAt(disk, c.hive, p.Offset, p.Data)
		if err != nil {
			return nil, err
		}
		changed = append(changed, e...)
	}
	return changed, nil
}
