package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// PayloadID checks that payload (size bytes, or more: a disk the payload
// was imported into may be larger) holds a whole, well-formed payload —
// header, trailer, every record header, not the data — and returns its
// ID. Any other disk fails with ErrCorrupt after one sector read, so the
// appliance's init program can use it to tell the payload disk from the
// disks to write.
func PayloadID(payload io.ReaderAt, size int64) (string, error) {
	p, err := openPayload(context.Background(), payload, size)
	if err != nil {
		return "", err
	}
	return p.h.idString(), nil
}

// payloadReader reads a payload whose structure has been checked.
type payloadReader struct {
	r       io.ReaderAt
	h       *header
	t       trailer
	maxLen  int64 // the longest record's length
	checked bool  // the first walk accepted every record
	sector  []byte
}

// readFull reads exactly len(b) bytes at off. A short read without
// another cause is io.ErrUnexpectedEOF.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n >= len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readPayload reads from the payload: running short of bytes is a
// truncated payload (ErrCorrupt), other errors are I/O errors.
func readPayload(r io.ReaderAt, b []byte, off int64) error {
	err := readFull(r, b, off)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return corruptf("truncated: cannot read %d bytes at %d", len(b), off)
	}
	if err != nil {
		return fmt.Errorf("appliance: reading payload at %d: %w", off, err)
	}
	return nil
}

// readHeader reads and checks the header of the payload in the first
// size bytes of r.
func readHeader(r io.ReaderAt, size int64) (*header, error) {
	if r == nil {
		return nil, errors.New("appliance: no payload")
	}
	if size < sectorSize {
		return nil, corruptf("truncated: %d bytes", size)
	}
	first := make([]byte, sectorSize)
	if err := readPayload(r, first, 0); err != nil {
		return nil, err
	}
	n, err := checkHeaderStart(first)
	if err != nil {
		return nil, err
	}
	b := first
	if n > 1 {
		if size < int64(n)*sectorSize {
			return nil, corruptf("truncated: %d bytes, header needs %d", size, n*sectorSize)
		}
		b = make([]byte, n*sectorSize)
		copy(b, first)
		if err := readPayload(r, b[sectorSize:], sectorSize); err != nil {
			return nil, err
		}
	}
	h, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	if h.length > size {
		return nil, corruptf("truncated: payload of %d bytes, %d available", h.length, size)
	}
	return h, nil
}

// openPayload checks the whole structure of a payload (header, trailer,
// every record header) without reading the data.
func openPayload(ctx context.Context, r io.ReaderAt, size int64) (*payloadReader, error) {
	h, err := readHeader(r, size)
	if err != nil {
		return nil, err
	}
	return checkPayload(ctx, r, h)
}

// checkPayload reads the trailer of the payload whose header is h and
// checks every record header against both.
func checkPayload(ctx context.Context, r io.ReaderAt, h *header) (*payloadReader, error) {
	p := &payloadReader{r: r, h: h, sector: make([]byte, sectorSize)}
	if err := readPayload(r, p.sector, h.length-trailerLen); err != nil {
		return nil, err
	}
	t, err := decodeTrailer(p.sector, h)
	if err != nil {
		return nil, err
	}
	p.t = t
	err = p.walk(ctx, func(rec record) error {
		p.maxLen = max(p.maxLen, rec.length)
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.checked = true
	return p, nil
}

// walk reads every record header in payload order, checks it and its
// place (targets in order, records of a target ascending and disjoint,
// inside the target's capacity, counts and bytes as the header says, the
// trailer's CRC over all record headers) and calls fn for each. It checks
// ctx between records. Every walk checks everything again, so that what a
// pass acts on is what the first walk accepted.
func (p *payloadReader) walk(ctx context.Context, fn func(record) error) error {
	h := p.h
	pos := int64(h.sectors()) * sectorSize
	dataEnd := h.length - trailerLen
	var sum uint32
	t := 0
	var recs, bytes, prevEnd int64
	for seq := int64(0); seq < h.records; seq++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("appliance: %w", err)
		}
		if pos+recordHdrLen > dataEnd {
			return corruptf("record %d: past the end of the data", seq)
		}
		if err := readPayload(p.r, p.sector, pos); err != nil {
			return err
		}
		rec, err := decodeRecord(p.sector, seq, h.id)
		if err != nil {
			return err
		}
		sum = crcUpdate(sum, p.sector)
		if rec.target != t {
			if rec.target != t+1 || rec.target >= len(h.targets) {
				return corruptf("record %d: target %d out of order after target %d", seq, rec.target, t)
			}
			if recs != h.targets[t].records || bytes != h.targets[t].guardBytes {
				return corruptf("record %d: target %d starts after %d of target %d's %d records, %d of its %d bytes",
					seq, rec.target, recs, t, h.targets[t].records, bytes, h.targets[t].guardBytes)
			}
			t, recs, bytes, prevEnd = rec.target, 0, 0, 0
		}
		ti := h.targets[t]
		switch {
		case rec.off < prevEnd:
			return corruptf("record %d: offset %d overlaps or precedes the previous record of target %d", seq, rec.off, t)
		case rec.end() > ti.capacity:
			return corruptf("record %d: %d+%d outside target %d's capacity %d", seq, rec.off, rec.length, t, ti.capacity)
		case recs+1 > ti.records || bytes+rec.length > ti.guardBytes:
			return corruptf("record %d: more records or bytes than target %d declares", seq, t)
		}
		if p.checked && rec.length > p.maxLen {
			// Only a payload that changes under the reader gets here.
			return corruptf("record %d: changed since the payload was checked", seq)
		}
		recs++
		bytes += rec.length
		prevEnd = rec.end()
		rec.pos = pos + recordHdrLen
		if rec.pos+rec.length > dataEnd {
			return corruptf("record %d: data past the end of the data", seq)
		}
		if fn != nil {
			if err := fn(rec); err != nil {
				return err
			}
		}
		pos = rec.pos + rec.length
	}
	if t != len(h.targets)-1 || recs != h.targets[t].records || bytes != h.targets[t].guardBytes {
		return corruptf("records end inside target %d", t)
	}
	if pos != dataEnd {
		return corruptf("records end at %d, trailer at %d", pos, dataEnd)
	}
	if sum != p.t.recordsCRC {
		return corruptf("trailer: CRC over record headers %#08x, stored %#08x", sum, p.t.recordsCRC)
	}
	return nil
}
