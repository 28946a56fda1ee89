package appliance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/standbykit/standbykit/internal/extent"
)

// plan checks targets against the format's limits and returns their
// table entries (without guard CRCs), the record count and the data bytes.
func plan(targets []Target) (infos []targetInfo, records, data int64, err error) {
	if len(targets) == 0 {
		return nil, 0, 0, errors.New("appliance: no targets")
	}
	if len(targets) > maxTargets {
		return nil, 0, 0, fmt.Errorf("appliance: %d targets, at most %d", len(targets), maxTargets)
	}
	infos = make([]targetInfo, len(targets))
	unitOwner := make(map[int]int)
	for i, t := range targets {
		if t.Unit < 0 || t.Unit > maxUnit || t.Unit == controllerUnit {
			return nil, 0, 0, fmt.Errorf("appliance: target %d: SCSI unit %d not in 0..%d (%d excluded: the controller's)", i, t.Unit, maxUnit, controllerUnit)
		}
		if o, dup := unitOwner[t.Unit]; dup && t.Unit != 0 {
			return nil, 0, 0, fmt.Errorf("appliance: target %d: SCSI unit %d is target %d's too", i, t.Unit, o)
		}
		unitOwner[t.Unit] = i
		infos[i].unit = t.Unit
		if t.Capacity <= 0 || t.Capacity%sectorSize != 0 || t.Capacity > maxCapacity {
			return nil, 0, 0, fmt.Errorf("appliance: target %d: capacity %d not a multiple of %d in (0, 2^56]", i, t.Capacity, sectorSize)
		}
		if t.Source == nil || t.Base == nil {
			return nil, 0, 0, fmt.Errorf("appliance: target %d: no Source or Base", i)
		}
		if len(t.Extents) == 0 {
			// A guard over nothing would match every disk of the capacity.
			return nil, 0, 0, fmt.Errorf("appliance: target %d: no extents (leave disks without changes out)", i)
		}
		var prevEnd int64
		for j, e := range t.Extents {
			if e.Off < prevEnd || e.Len <= 0 || e.Off%sectorSize != 0 || e.Len%sectorSize != 0 || e.Len > t.Capacity-e.Off {
				return nil, 0, 0, fmt.Errorf("appliance: target %d: extent %d (%d+%d) not sorted, disjoint, %d-byte aligned and inside capacity %d",
					i, j, e.Off, e.Len, sectorSize, t.Capacity)
			}
			prevEnd = e.End()
			infos[i].guardBytes += e.Len
			infos[i].records += (e.Len + maxRecordLen - 1) / maxRecordLen
		}
		infos[i].capacity = t.Capacity
		records += infos[i].records
		data += infos[i].guardBytes
	}
	return infos, records, data, nil
}

func payloadSize(targets []Target) (int64, error) {
	_, records, data, err := plan(targets)
	if err != nil {
		return 0, err
	}
	return payloadLen(len(targets), records, data), nil
}

// pieces calls fn for each record-sized piece of exts in order, checking
// ctx before each.
func pieces(ctx context.Context, exts []extent.Extent, fn func(off, n int64) error) error {
	for _, e := range exts {
		for off := e.Off; off < e.End(); {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("appliance: %w", err)
			}
			n := min(maxRecordLen, e.End()-off)
			if err := fn(off, n); err != nil {
				return err
			}
			off += n
		}
	}
	return nil
}

// countWriter counts what it writes and turns short writes into errors.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("appliance: writing payload at %d: %w", c.n, err)
	}
	return nil
}

func writePayload(ctx context.Context, w io.Writer, targets []Target) (string, int64, error) {
	infos, records, data, err := plan(targets)
	if err != nil {
		return "", 0, err
	}
	if err := ctx.Err(); err != nil {
		return "", 0, fmt.Errorf("appliance: %w", err)
	}
	var longest int64
	for _, t := range targets {
		for _, e := range t.Extents {
			longest = max(longest, min(e.Len, maxRecordLen))
		}
	}
	buf := make([]byte, longest)

	// The guards go in the header, before any record: one read of every
	// target's Base over its extents, in the order Apply reads the disk.
	for i, t := range targets {
		var sum uint32
		err := pieces(ctx, t.Extents, func(off, n int64) error {
			if err := readFull(t.Base, buf[:n], off); err != nil {
				return fmt.Errorf("appliance: target %d: reading base at %d: %w", i, off, err)
			}
			sum = crcUpdate(sum, buf[:n])
			return nil
		})
		if err != nil {
			return "", 0, err
		}
		infos[i].guardCRC = sum
	}

	h := &header{targets: infos, records: records, length: payloadLen(len(targets), records, data)}
	_, _ = rand.Read(h.id[:]) // never fails (the runtime aborts instead)
	cw := &countWriter{w: w}
	if err := cw.write(h.encode()); err != nil {
		return "", cw.n, err
	}
	sector := make([]byte, recordHdrLen)
	var sum uint32
	var seq int64
	for i, t := range targets {
		err := pieces(ctx, t.Extents, func(off, n int64) error {
			b := buf[:n]
			if err := readFull(t.Source, b, off); err != nil {
				return fmt.Errorf("appliance: target %d: reading source at %d: %w", i, off, err)
			}
			encodeRecord(sector, record{seq: seq, target: i, off: off, length: n, crc: crc(b)}, h.id)
			sum = crcUpdate(sum, sector)
			seq++
			if err := cw.write(sector); err != nil {
				return err
			}
			return cw.write(b)
		})
		if err != nil {
			return "", cw.n, err
		}
	}
	if err := cw.write(encodeTrailer(h, sum)); err != nil {
		return "", cw.n, err
	}
	if cw.n != h.length {
		return "", cw.n, fmt.Errorf("appliance: internal error: wrote %d bytes, planned %d", cw.n, h.length)
	}
	return h.idString(), cw.n, nil
}
