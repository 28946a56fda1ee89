package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

// maxReportError bounds the error message of a report line, so that every
// line Apply writes stays far below maxReportLine even fully escaped.
const maxReportError = 1024

// reporter writes an Apply report, one JSON object per line, each with
// one Write call.
type reporter struct {
	w   io.Writer
	id  string
	err error // the first write error
}

func (r *reporter) write(b []byte) {
	if r.w == nil {
		return
	}
	if _, err := r.w.Write(b); err != nil && r.err == nil {
		r.err = err
	}
}

func (r *reporter) line(l ReportLine) {
	if r.w == nil {
		return
	}
	l.PayloadID = r.id
	if len(l.Error) > maxReportError {
		l.Error = l.Error[:maxReportError]
		for !utf8.ValidString(l.Error) {
			l.Error = l.Error[:len(l.Error)-1]
		}
		l.Error += "…"
	}
	b, err := json.Marshal(l)
	if err != nil { // cannot happen: every field marshals
		return
	}
	r.write(append(b, '\n'))
}

func intp(i int) *int { return &i }

// applier is one Apply call after the payload's structure was accepted.
type applier struct {
	ctx   context.Context
	p     *payloadReader
	disks []Disk
	rep   *reporter
	buf   []byte // one record
	match []int  // target → disk
	units []int  // disk → its SCSI unit, -1 if it reports none
}

func apply(ctx context.Context, payload io.ReaderAt, size int64, disks []Disk, report io.Writer) (res Result, err error) {
	rep := &reporter{w: report}
	// A newline first ends whatever the console printed without one.
	rep.write([]byte("\n"))
	defer func() {
		if err != nil {
			rep.line(ReportLine{Event: "error", Error: err.Error()})
		}
	}()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("appliance: %w", err)
	}
	h, err := readHeader(payload, size)
	if err != nil {
		return res, err
	}
	res.PayloadID = h.idString()
	rep.id = res.PayloadID
	rep.line(ReportLine{Event: "start", Records: int(h.records), Bytes: h.dataBytes(), OK: true})
	p, err := checkPayload(ctx, payload, h)
	if err != nil {
		return res, err
	}
	a := &applier{ctx: ctx, p: p, disks: disks, rep: rep, buf: make([]byte, p.maxLen)}
	if err := a.guard(); err != nil {
		return res, err
	}
	if err := a.checkData(); err != nil {
		return res, err
	}
	if rep.err != nil {
		// The host would not learn what happened: better write nothing.
		return res, fmt.Errorf("appliance: writing the report: %w", rep.err)
	}
	// From here on, disks may be written: Targets tells which.
	res.Targets = a.match
	if err := a.write(&res); err != nil {
		return res, err
	}
	for t, d := range a.match {
		if err := disks[d].Sync(); err != nil {
			return res, fmt.Errorf("appliance: target %d: syncing disk %d: %w", t, d, err)
		}
	}
	if err := a.verify(); err != nil {
		return res, err
	}
	rep.line(ReportLine{Event: "done", Records: res.Records, Bytes: res.BytesWritten, OK: true})
	return res, nil
}

// diskUnits returns the SCSI unit each disk reports (-1: none, or a nil
// disk) and whether any disk reports one.
func diskUnits(disks []Disk) (units []int, some bool) {
	units = make([]int, len(disks))
	for d, disk := range disks {
		units[d] = -1
		if a, ok := disk.(Addressed); ok {
			if u, ok := a.Unit(); ok && u >= 0 {
				units[d], some = u, true
			}
		}
	}
	return units, some
}

// guard matches every target to its disk — the one at its SCSI unit when
// the target has one and the disks report theirs, else the one of its
// capacity — whose content over the target's records has the target's
// guard CRC, reading each candidate once, and reports a guard line per
// target.
func (a *applier) guard() error {
	h := a.p.h
	sizes := make([]int64, len(a.disks))
	for d, disk := range a.disks {
		sizes[d] = -1
		if disk != nil {
			sizes[d] = disk.Size()
		}
	}
	units, anyUnit := diskUnits(a.disks)
	a.units = units
	byUnit := make([]bool, len(h.targets))
	atUnit := make([][]int, len(h.targets)) // disks at the target's unit
	cand := make([][]int, len(h.targets))
	sums := make([][]uint32, len(h.targets))
	for t, ti := range h.targets {
		byUnit[t] = anyUnit && ti.unit > 0
		for d, s := range sizes {
			if byUnit[t] {
				if units[d] != ti.unit {
					continue
				}
				atUnit[t] = append(atUnit[t], d)
			}
			if s == ti.capacity {
				cand[t] = append(cand[t], d)
			}
		}
		sums[t] = make([]uint32, len(cand[t]))
	}
	err := a.p.walk(a.ctx, func(rec record) error {
		b := a.buf[:rec.length]
		for k, d := range cand[rec.target] {
			if err := readFull(a.disks[d], b, rec.off); err != nil {
				return fmt.Errorf("appliance: guard of target %d: reading disk %d at %d: %w", rec.target, d, rec.off, err)
			}
			sums[rec.target][k] = crcUpdate(sums[rec.target][k], b)
		}
		return nil
	})
	if err != nil {
		return err
	}

	match := make([]int, len(h.targets))
	problem := make([]string, len(h.targets))
	owner := make(map[int]int)
	for t, ti := range h.targets {
		var found []int
		for k, d := range cand[t] {
			if sums[t][k] == ti.guardCRC {
				found = append(found, d)
			}
		}
		match[t] = -1
		at := ""
		if byUnit[t] {
			at = fmt.Sprintf(" at SCSI unit %d", ti.unit)
		}
		switch {
		case byUnit[t] && len(atUnit[t]) == 0:
			problem[t] = fmt.Sprintf("no disk is at SCSI unit %d", ti.unit)
		case len(cand[t]) == 0 && len(atUnit[t]) == 1:
			problem[t] = fmt.Sprintf("disk %d%s has capacity %d, not %d", atUnit[t][0], at, sizes[atUnit[t][0]], ti.capacity)
		case len(cand[t]) == 0 && byUnit[t]:
			problem[t] = fmt.Sprintf("none of disks %v%s has capacity %d", atUnit[t], at, ti.capacity)
		case len(cand[t]) == 0:
			problem[t] = fmt.Sprintf("no disk has capacity %d", ti.capacity)
		case len(found) == 0:
			problem[t] = fmt.Sprintf("none of disks %v%s (capacity %d) matches", cand[t], at, ti.capacity)
		case len(found) > 1:
			problem[t] = fmt.Sprintf("disks %v%s all match (ambiguous)", found, at)
		default:
			match[t] = found[0]
			if o, dup := owner[found[0]]; dup {
				problem[t] = fmt.Sprintf("disk %d also matches target %d", found[0], o)
				problem[o] = fmt.Sprintf("disk %d also matches target %d", found[0], t)
			} else {
				owner[found[0]] = t
			}
		}
	}
	first := -1
	for t, ti := range h.targets {
		if problem[t] != "" {
			match[t] = -1
			if first < 0 {
				first = t
			}
			a.rep.line(ReportLine{Event: "guard", Target: intp(t), Records: int(ti.records), Bytes: ti.guardBytes, Error: problem[t]})
			continue
		}
		a.rep.line(ReportLine{Event: "guard", Target: intp(t), Disk: intp(match[t]), Unit: a.unitp(match[t]), Records: int(ti.records), Bytes: ti.guardBytes, OK: true})
	}
	if first >= 0 {
		return fmt.Errorf("%w: target %d: %s", ErrGuard, first, problem[first])
	}
	a.match = match
	return nil
}

// unitp is the SCSI unit disk d reports, for a report line; nil if none.
func (a *applier) unitp(d int) *int {
	if a.units[d] < 0 {
		return nil
	}
	return intp(a.units[d])
}

// readRecord reads a record's data into the buffer and checks its CRC.
func (a *applier) readRecord(rec record, what string) ([]byte, error) {
	b := a.buf[:rec.length]
	if err := readPayload(a.p.r, b, rec.pos); err != nil {
		return nil, err
	}
	if c := crc(b); c != rec.crc {
		return nil, corruptf("record %d (target %d, %d+%d): data CRC %#08x, stored %#08x%s", rec.seq, rec.target, rec.off, rec.length, c, rec.crc, what)
	}
	return b, nil
}

// checkData reads every record's data and checks its CRC, before the
// first write.
func (a *applier) checkData() error {
	return a.p.walk(a.ctx, func(rec record) error {
		_, err := a.readRecord(rec, "")
		return err
	})
}

// perTarget reports one line per target as a walk leaves it.
type perTarget struct {
	a       *applier
	event   string
	cur     int
	records int
	bytes   int64
	bad     int
	firstAt int64
}

func (p *perTarget) next(rec record) {
	if rec.target != p.cur {
		p.flush()
		p.cur, p.records, p.bytes, p.bad = rec.target, 0, 0, 0
	}
	p.records++
	p.bytes += rec.length
}

func (p *perTarget) flush() {
	if p.cur < 0 {
		return
	}
	d := p.a.match[p.cur]
	l := ReportLine{Event: p.event, Target: intp(p.cur), Disk: intp(d), Unit: p.a.unitp(d), Records: p.records, Bytes: p.bytes, OK: p.bad == 0}
	if p.bad > 0 {
		l.Error = fmt.Sprintf("%d of %d records read back differently, the first at offset %d", p.bad, p.records, p.firstAt)
	}
	p.a.rep.line(l)
}

// write writes every record, checking its CRC again: the bytes written
// are the bytes checked.
func (a *applier) write(res *Result) error {
	pt := &perTarget{a: a, event: "write", cur: -1}
	err := a.p.walk(a.ctx, func(rec record) error {
		b, err := a.readRecord(rec, " (changed since it was checked)")
		if err != nil {
			return err
		}
		d := a.match[rec.target]
		n, err := a.disks[d].WriteAt(b, rec.off)
		if err == nil && n != len(b) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return fmt.Errorf("appliance: target %d: writing disk %d at %d: %w", rec.target, d, rec.off, err)
		}
		pt.next(rec)
		res.Records++
		res.BytesWritten += rec.length
		return nil
	})
	if err != nil {
		return err
	}
	pt.flush()
	return nil
}

// verify reads every record back from its disk and compares its CRC.
func (a *applier) verify() error {
	pt := &perTarget{a: a, event: "verify", cur: -1}
	var first error
	err := a.p.walk(a.ctx, func(rec record) error {
		d := a.match[rec.target]
		b := a.buf[:rec.length]
		if err := readFull(a.disks[d], b, rec.off); err != nil {
			return fmt.Errorf("appliance: target %d: reading back disk %d at %d: %w", rec.target, d, rec.off, err)
		}
		pt.next(rec)
		if c := crc(b); c != rec.crc {
			if pt.bad == 0 {
				pt.firstAt = rec.off
			}
			pt.bad++
			if first == nil {
				first = fmt.Errorf("%w: target %d, disk %d, record %d (%d+%d): CRC %#08x, wrote %#08x", ErrVerify, rec.target, d, rec.seq, rec.off, rec.length, c, rec.crc)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	pt.flush()
	return first
}
