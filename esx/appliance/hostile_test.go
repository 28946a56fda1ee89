package appliance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/heapprobe"
)

// Hostile payloads and reports: they claim enormous sizes and counts, with
// right CRCs, so that only the bounds stop them. Each must fail with a
// typed error having allocated little.

// hostileHeader encodes targets and the totals they imply, computed
// without overflow, into a payload of size bytes (zeros after the header).
func hostileHeader(targets []targetInfo, size int) []byte {
	h := &header{targets: targets}
	var data, records uint64
	for _, t := range targets {
		data += uint64(t.guardBytes)
		records += uint64(t.records)
	}
	h.records = int64(records)
	h.length = int64(uint64(headerSectors(len(targets))+1)*sectorSize + records*recordHdrLen + data)
	b := make([]byte, size)
	copy(b, h.encode())
	return b
}

func TestHostilePayloadHeaders(t *testing.T) {
	maxed := make([]targetInfo, maxTargets)
	for i := range maxed {
		maxed[i] = targetInfo{capacity: maxCapacity, guardBytes: maxCapacity, records: maxCapacity / sectorSize}
	}
	one := func(ti targetInfo) []targetInfo { return []targetInfo{ti} }
	for name, targets := range map[string][]targetInfo{
		// 2^63 + 3 KiB: the layout's length wrapped negative, matched a
		// length field of 2^63 + 3 KiB, passed "no larger than the bytes
		// available", and the trailer was read at a negative offset (an
		// untyped I/O error).
		"64 targets of 2^56 bytes in 2^47 records":   maxed,
		"a target of 2^56 bytes in one record":       one(targetInfo{capacity: maxCapacity, guardBytes: maxCapacity, records: 1}),
		"a target of 2^56 bytes in 2^47 records":     one(targetInfo{capacity: maxCapacity, guardBytes: maxCapacity, records: maxCapacity / sectorSize}),
		"a capacity of 2^63":                         one(targetInfo{capacity: math.MaxInt64 - 511, guardBytes: 512, records: 1}),
		"more records than sectors":                  one(targetInfo{capacity: 1 << 20, guardBytes: 4096, records: 9}),
		"a payload of 4 GiB in a file of 1 MiB":      one(targetInfo{capacity: 8 << 30, guardBytes: 4 << 30, records: 1024}),
		"a record count that the bytes cannot reach": one(targetInfo{capacity: 8 << 30, guardBytes: 1 << 30, records: 1 << 21}),
	} {
		b := hostileHeader(targets, 1<<20)
		var openErr, applyErr error
		d := NewMemDisk(1<<20, nil)
		n := heapprobe.Allocated(func() {
			_, openErr = PayloadID(bytes.NewReader(b), int64(len(b)))
			_, applyErr = Apply(context.Background(), bytes.NewReader(b), int64(len(b)), []Disk{d}, io.Discard)
		})
		require.ErrorIs(t, openErr, ErrCorrupt, name)
		require.ErrorIs(t, applyErr, ErrCorrupt, name)
		require.Zero(t, d.Writes())
		require.Less(t, n, uint64(256<<10), "%s: allocated %d bytes", name, n)
	}
}

// TestHostileRecordLength: a record that claims 4 MiB in a payload of a
// few sectors fails the walk before Apply allocates a buffer for it.
func TestHostileRecordLength(t *testing.T) {
	c := crafted{
		targets: []targetInfo{{capacity: 64 << 20, guardBytes: maxRecordLen, records: 1}},
		recs:    []record{{target: 0, off: 0, length: 512}},
		hook: func(b []byte, h *header) {
			s := b[sectorSize:]
			le.PutUint32(s[8:], maxRecordLen)
			fixSector(s)
			tr := b[len(b)-trailerLen:]
			le.PutUint32(tr[48:], crc(s))
			fixSector(tr)
		},
	}
	b := c.assemble()[:4*sectorSize]
	var err error
	n := heapprobe.Allocated(func() {
		_, err = Apply(context.Background(), bytes.NewReader(b), int64(len(b)), []Disk{NewMemDisk(64<<20, nil)}, io.Discard)
	})
	require.ErrorIs(t, err, ErrCorrupt)
	require.Less(t, n, uint64(256<<10), "allocated %d bytes", n)
}

func TestHostileReports(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef"
	start := `{"event":"start","payloadId":"` + id + `","records":1,"bytes":512,"ok":true}` + "\n"
	for name, r := range map[string]io.Reader{
		"64 MiB without a line end":       io.LimitReader(repeatReader('x'), 64<<20),
		"64 MiB of short lines":           io.LimitReader(strings.NewReader(strings.Repeat("[ 1.0] noise\n", 5<<20)), 64<<20),
		"64 MiB of JSON noise":            io.LimitReader(strings.NewReader(strings.Repeat(`{"event":"x"}`+"\n", 5<<20)), 64<<20),
		"a started report, then 64 MiB":   io.MultiReader(strings.NewReader(start), io.LimitReader(repeatReader('y'), 64<<20)),
		"a started report, then 1M lines": io.MultiReader(strings.NewReader(start), strings.NewReader(strings.Repeat("\n", 1<<20))),
	} {
		var err error
		n := heapprobe.Allocated(func() { err = ReadReport(r, id) })
		require.True(t, errors.Is(err, ErrReport), "%s: %v", name, err)
		// The JSON noise is decoded line by line, at most 10,000 lines.
		require.Less(t, n, uint64(32<<20), "%s: allocated %d bytes", name, n)
	}
}

// repeatReader reads as an endless run of one byte.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
