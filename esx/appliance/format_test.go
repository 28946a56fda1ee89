package appliance

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/extent"
)

// crafted describes a payload to assemble with valid CRCs everywhere, so
// that the structural checks behind the CRCs can be tested.
type crafted struct {
	targets []targetInfo // records and guard bytes are filled from recs unless set
	recs    []record     // seq is filled; crc is filled from the data
	id      [16]byte
	// hook may change the assembled bytes; then fix restores CRCs.
	hook func(b []byte, h *header)
}

// assemble lays out c as WritePayload would, data from Pattern{7}.
func (c crafted) assemble() []byte {
	h := &header{id: c.id, targets: append([]targetInfo(nil), c.targets...)}
	fill := h.targets[0].records == 0
	for _, r := range c.recs {
		if fill && r.target < len(h.targets) {
			h.targets[r.target].records++
			h.targets[r.target].guardBytes += r.length
		}
	}
	var data int64
	for _, t := range h.targets {
		h.records += t.records
		data += t.guardBytes
	}
	h.length = payloadLen(len(h.targets), h.records, data)
	var out bytes.Buffer
	out.Write(h.encode())
	sector := make([]byte, sectorSize)
	var sum uint32
	for i, r := range c.recs {
		b := make([]byte, r.length)
		_, _ = Pattern{Seed: 7}.ReadAt(b, r.off)
		r.seq, r.crc = int64(i), crc(b)
		encodeRecord(sector, r, c.id)
		sum = crcUpdate(sum, sector)
		out.Write(sector)
		out.Write(b)
	}
	out.Write(encodeTrailer(h, sum))
	b := out.Bytes()
	if c.hook != nil {
		c.hook(b, h)
	}
	return b
}

// fixSector recomputes the CRC at the end of a record or trailer sector.
func fixSector(s []byte) { le.PutUint32(s[crcOff:], crc(s[:crcOff])) }

// fixHeader recomputes the header CRC (and the trailer's copy of it).
func fixHeader(b []byte, h *header) {
	end := h.sectors()*sectorSize - 4
	c := crc(b[:end])
	le.PutUint32(b[end:], c)
	tr := b[len(b)-trailerLen:]
	le.PutUint32(tr[12:], c)
	fixSector(tr)
}

func open(b []byte) error {
	_, err := openPayload(context.Background(), bytes.NewReader(b), int64(len(b)))
	return err
}

func TestCraftedPayloads(t *testing.T) {
	two := []targetInfo{{capacity: 64 << 10}, {capacity: 32 << 10}}
	valid := crafted{targets: two, recs: []record{{target: 0, off: 0, length: 1024}, {target: 0, off: 1024, length: 512}, {target: 1, off: 32<<10 - 512, length: 512}}}
	require.NoError(t, open(valid.assemble()), "the builder makes valid payloads")
	for _, units := range [][2]int{{1, 2}, {15, 1}, {0, 0}, {0, 6}, {8, 0}} {
		c := valid
		c.targets = []targetInfo{{capacity: 64 << 10, unit: units[0]}, {capacity: 32 << 10, unit: units[1]}}
		b := c.assemble()
		p, err := openPayload(context.Background(), bytes.NewReader(b), int64(len(b)))
		require.NoError(t, err, "units %v", units)
		assert.Equal(t, units[0], p.h.targets[0].unit)
		assert.Equal(t, units[1], p.h.targets[1].unit)
		assert.Equal(t, byte(units[0]), b[headerFixedLen+28], "the unit is at byte 28 of the target entry")
	}

	with := func(f func(c *crafted)) crafted {
		c := valid
		c.targets = append([]targetInfo(nil), valid.targets...)
		c.recs = append([]record(nil), valid.recs...)
		f(&c)
		return c
	}
	cases := map[string]crafted{
		"overlap":           with(func(c *crafted) { c.recs[1].off = 512 }),
		"descending":        with(func(c *crafted) { c.recs[0].off, c.recs[1].off = 4096, 0 }),
		"outside capacity":  with(func(c *crafted) { c.recs[2].off = 32 << 10 }),
		"straddles the end": with(func(c *crafted) { c.recs[2].off, c.recs[2].length = 32<<10-512, 1024 }),
		"unaligned offset":  with(func(c *crafted) { c.recs[1].off = 1100 }),
		"unaligned length":  with(func(c *crafted) { c.recs[1].length = 500 }),
		"targets reordered": with(func(c *crafted) { c.recs[0], c.recs[2] = c.recs[2], c.recs[0] }),
		"unknown target":    with(func(c *crafted) { c.recs[2].target = 2 }),
		"no records":        with(func(c *crafted) { c.recs = c.recs[:2] }),
		"65 targets":        with(func(c *crafted) { c.targets = make([]targetInfo, 65); c.targets[0].capacity = 1 << 20 }),
		// Header totals right, split between targets wrong.
		"records moved": with(func(c *crafted) {
			c.recs[2].off, c.recs[2].length = 0, 1024
			c.targets[0] = targetInfo{capacity: 64 << 10, records: 1, guardBytes: 1536}
			c.targets[1] = targetInfo{capacity: 32 << 10, records: 2, guardBytes: 1024}
		}),
		"bytes moved": with(func(c *crafted) {
			c.recs[2].off, c.recs[2].length = 0, 1024
			c.targets[0] = targetInfo{capacity: 64 << 10, records: 2, guardBytes: 2048}
			c.targets[1] = targetInfo{capacity: 32 << 10, records: 1, guardBytes: 512}
		}),
		"capacity unaligned": with(func(c *crafted) { c.targets[1].capacity = 32<<10 + 100 }),
		"sequence": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) {
				s := b[sectorSize+1024+512:]
				le.PutUint64(s[24:], 5)
				fixSector(s)
			}
		}),
		"record of another payload": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) {
				s := b[sectorSize:]
				s[40] ^= 1
				fixSector(s)
			}
		}),
		"record padding": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) {
				s := b[sectorSize:]
				s[300] = 1
				fixSector(s)
			}
		}),
		"record flags": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) {
				s := b[sectorSize:]
				s[6] = 1
				fixSector(s)
			}
		}),
		"header padding": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) { b[300] = 1; fixHeader(b, h) }
		}),
		"header reserved": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) { b[50] = 1; fixHeader(b, h) }
		}),
		"header flags": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) { b[10] = 1; fixHeader(b, h) }
		}),
		// Version 1 (no units) is no longer read.
		"version 1": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) { b[8] = 1; fixHeader(b, h) }
		}),
		"version 3": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) { b[8] = 3; fixHeader(b, h) }
		}),
		"trailer version 1": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) {
				tr := b[len(b)-trailerLen:]
				tr[8] = 1
				fixSector(tr)
			}
		}),
		"unit 7, the controller's": with(func(c *crafted) { c.targets[0].unit = 7 }),
		"unit 16":                  with(func(c *crafted) { c.targets[1].unit = 16 }),
		"unit 257": with(func(c *crafted) {
			c.targets[0].unit = 1
			c.hook = func(b []byte, h *header) { b[headerFixedLen+29] = 1; fixHeader(b, h) }
		}),
		"unit 0xffff":           with(func(c *crafted) { c.targets[0].unit = 0xffff }),
		"two targets at a unit": with(func(c *crafted) { c.targets[0].unit, c.targets[1].unit = 3, 3 }),
		"target reserved after the unit": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) { b[headerFixedLen+targetEntryLen+31] = 1; fixHeader(b, h) }
		}),
		"header length": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) { le.PutUint64(b[40:], uint64(len(b)-512)); fixHeader(b, h) }
		}),
		"header record count": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) { le.PutUint64(b[32:], 4); fixHeader(b, h) }
		}),
		"target reserved": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) { b[headerFixedLen+30] = 1; fixHeader(b, h) }
		}),
		"header sectors": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) { b[14] = 2; fixHeader(b, h) }
		}),
		"trailer records CRC": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) {
				tr := b[len(b)-trailerLen:]
				tr[48] ^= 1
				fixSector(tr)
			}
		}),
		"trailer padding": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) {
				tr := b[len(b)-trailerLen:]
				tr[100] = 1
				fixSector(tr)
			}
		}),
		"trailer of another header": with(func(c *crafted) {
			c.hook = func(b []byte, h *header) {
				tr := b[len(b)-trailerLen:]
				tr[12] ^= 1
				fixSector(tr)
			}
		}),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := c.assemble()
			err := open(b)
			t.Log(err)
			assert.ErrorIs(t, err, ErrCorrupt)
			d0, d1 := NewPatternDisk(64<<10, 1), NewPatternDisk(32<<10, 1)
			_, err = Apply(context.Background(), bytes.NewReader(b), int64(len(b)), []Disk{d0, d1}, nil)
			assert.ErrorIs(t, err, ErrCorrupt)
			assert.Zero(t, d0.Writes()+d1.Writes())
		})
	}
}

func TestRecordLimits(t *testing.T) {
	var id [16]byte
	b := make([]byte, sectorSize)
	encodeRecord(b, record{length: maxRecordLen}, id)
	_, err := decodeRecord(b, 0, id)
	require.NoError(t, err)
	encodeRecord(b, record{length: maxRecordLen + sectorSize}, id)
	_, err = decodeRecord(b, 0, id)
	assert.ErrorIs(t, err, ErrCorrupt)
	encodeRecord(b, record{length: 512, off: maxCapacity + 512}, id)
	_, err = decodeRecord(b, 0, id)
	assert.ErrorIs(t, err, ErrCorrupt)
	encodeRecord(b, record{length: 500}, id)
	_, err = decodeRecord(b, 0, id)
	assert.ErrorIs(t, err, ErrCorrupt)
	encodeRecord(b, record{length: 0}, id)
	_, err = decodeRecord(b, 0, id)
	assert.ErrorIs(t, err, ErrCorrupt)

	// A header whose target needs a record longer than the limit.
	h := &header{targets: []targetInfo{{capacity: 16 << 20, guardBytes: maxRecordLen + 512, records: 1}}, records: 1}
	h.length = payloadLen(1, 1, maxRecordLen+512)
	_, err = decodeHeader(h.encode())
	assert.ErrorIs(t, err, ErrCorrupt)
	h.targets[0].records = 2
	h.records = 2
	h.length = payloadLen(1, 2, maxRecordLen+512)
	_, err = decodeHeader(h.encode())
	assert.NoError(t, err)
}

func TestLayout(t *testing.T) {
	assert.Equal(t, 1, headerSectors(1))
	assert.Equal(t, 5, headerSectors(maxTargets))
	// Every record's data starts on a sector of the payload.
	tg := Target{Capacity: 64 << 20, Source: Pattern{1}, Base: Pattern{2}}
	for off := int64(0); off+6<<20 < 64<<20; off += 9 << 20 {
		tg.Extents = append(tg.Extents, extent.Extent{Off: off, Len: 5<<20 + 512})
	}
	var buf bytes.Buffer
	_, _, err := WritePayload(context.Background(), &buf, []Target{tg})
	require.NoError(t, err)
	p, err := openPayload(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)
	assert.Equal(t, int64(maxRecordLen), p.maxLen)
	n := 0
	require.NoError(t, p.walk(context.Background(), func(r record) error {
		n++
		assert.Zero(t, r.pos%sectorSize)
		assert.LessOrEqual(t, r.length, int64(maxRecordLen))
		return nil
	}))
	assert.Equal(t, 2*len(tg.Extents), n)
}
