package appliance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrReport is what ReadReport returns (wrapped, with the details) when a
// report does not tell a successful apply of the payload: the appliance
// reported a failure, or the report is empty, cut, too long, for another
// payload, or malformed. When the appliance reported a failure, the
// error's text ends with the appliance's message, and errors.Is also
// matches ErrCorrupt, ErrGuard or ErrVerify when that message is one of
// theirs (a damaged payload is worth sending again; a guard mismatch means
// the disks are not in the state the payload was made for).
var ErrReport = errors.New("appliance: report does not tell a successful apply")

// Bounds of a report. Apply writes a few lines per target, none longer
// than about 7 KiB; the rest of the budget is for what the console may
// print on the serial port before the report starts.
const (
	maxReportBytes = 1 << 20
	maxReportLines = 10000
	maxReportLine  = 8 << 10
)

// reportPrefix starts every line Apply writes (encoding/json writes the
// fields in declaration order); before the report starts, ReadReport looks
// for it inside lines, after whatever noise the console left there.
var reportPrefix = []byte(`{"event":`)

// remoteError is an error the appliance reported: its message, and the
// package error that message names, if any.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

func remote(msg string) error {
	if msg == "" {
		msg = "(no message)"
	}
	e := &remoteError{msg: msg}
	for _, kind := range []error{ErrCorrupt, ErrGuard, ErrVerify} {
		if strings.HasPrefix(msg, kind.Error()) {
			e.kind = kind
			break
		}
	}
	return e
}

// lineReader returns a report's lines one by one, within the bounds.
type lineReader struct {
	br    *bufio.Reader
	total int64
}

// next returns the next line without its line end, or long when it
// exceeds maxReportLine (its content is then dropped), or io.EOF.
func (r *lineReader) next() (line []byte, long bool, err error) {
	for {
		frag, err := r.br.ReadSlice('\n')
		r.total += int64(len(frag))
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			long = true
			continue
		case err != nil && err != io.EOF:
			return nil, false, err
		case err == io.EOF && len(frag) == 0 && !long:
			return nil, false, io.EOF
		case long:
			return nil, true, nil
		}
		return bytes.TrimSuffix(bytes.TrimSuffix(frag, []byte("\n")), []byte("\r")), false, nil
	}
}

// decodeLine decodes one report line strictly: one JSON object, known
// fields only, nothing after it.
func decodeLine(b []byte) (ReportLine, error) {
	var l ReportLine
	if len(b) == 0 || b[0] != '{' {
		return l, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return l, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return l, errors.New("data after the JSON object")
	}
	return l, nil
}

// reportState follows one report through its lines.
type reportState struct {
	id      string
	started bool
	start   ReportLine
	failed  bool      // a step reported ok false
	seen    [3]uint64 // targets with a guard, write, verify line
	records [2]int64  // sums of the write and verify lines
	bytes   [2]int64
	foreign string // a payload ID of another report seen before ours
	early   string // an error the appliance reported before knowing a payload
}

func (s *reportState) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: payload %s: %s", ErrReport, s.id, fmt.Sprintf(format, args...))
}

func (s *reportState) failure(msg string) error {
	return fmt.Errorf("%w: payload %s: the appliance reported: %w", ErrReport, s.id, remote(msg))
}

// feed takes one line; end is true when the line decides the report.
func (s *reportState) feed(line []byte, long bool) (end bool, err error) {
	if !s.started {
		return s.feedBefore(line, long)
	}
	if long {
		return true, s.errorf("line longer than %d bytes", maxReportLine)
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return false, nil
	}
	l, err := decodeLine(line)
	if err != nil {
		return true, s.errorf("malformed line %.80q: %v", line, err)
	}
	// The init program's own error line (it failed around Apply) has no
	// payload ID; every other line must carry this payload's.
	if l.PayloadID != s.id && (l.PayloadID != "" || l.Event != "error") {
		return true, s.errorf("a line of payload %q inside the report", l.PayloadID)
	}
	switch l.Event {
	case "guard", "write", "verify":
		return false, s.step(l)
	case "done":
		if !l.OK || l.Error != "" {
			return true, s.failure(l.Error)
		}
		return true, s.done(l)
	case "error":
		return true, s.failure(l.Error)
	case "start":
		return true, s.errorf("a second start line")
	}
	return true, s.errorf("unknown event %q", l.Event)
}

// feedBefore takes a line before the report's start: console noise, the
// report of another payload, or an error the appliance reported before it
// could read a payload ID.
func (s *reportState) feedBefore(line []byte, long bool) (bool, error) {
	i := bytes.Index(line, reportPrefix)
	if long || i < 0 {
		return false, nil
	}
	l, err := decodeLine(bytes.TrimSpace(line[i:]))
	if err != nil {
		return false, nil
	}
	switch {
	case l.PayloadID == s.id && l.Event == "start":
		if !l.OK || l.Error != "" || l.Records <= 0 || l.Bytes <= 0 {
			return true, s.errorf("malformed start line")
		}
		s.started, s.start = true, l
	case l.PayloadID == s.id:
		return true, s.errorf("%q line before the start line", l.Event)
	case l.PayloadID != "":
		s.foreign = l.PayloadID
	case l.Event == "error":
		s.early = l.Error
	}
	return false, nil
}

var (
	stepIndex = map[string]int{"guard": 0, "write": 1, "verify": 2}
	stepNames = [...]string{"guard", "write", "verify"}
)

// step takes a guard, write or verify line.
func (s *reportState) step(l ReportLine) error {
	k := stepIndex[l.Event]
	if l.Target == nil || *l.Target < 0 || *l.Target >= maxTargets || l.Records < 0 || l.Bytes < 0 || int64(l.Records) > maxCapacity || l.Bytes > maxCapacity ||
		(l.Unit != nil && (*l.Unit < 0 || l.Disk == nil)) {
		return s.errorf("malformed %s line", l.Event)
	}
	bit := uint64(1) << *l.Target
	switch {
	case s.seen[k]&bit != 0:
		return s.errorf("a second %s line for target %d", l.Event, *l.Target)
	case k > 0 && s.seen[k-1]&bit == 0:
		return s.errorf("%s line for target %d before its %s line", l.Event, *l.Target, stepNames[k-1])
	case l.OK && (l.Disk == nil || *l.Disk < 0 || l.Error != ""):
		return s.errorf("malformed %s line", l.Event)
	}
	s.seen[k] |= bit
	if !l.OK {
		s.failed = true
	}
	if k > 0 {
		s.records[k-1] += int64(l.Records)
		s.bytes[k-1] += l.Bytes
	}
	return nil
}

// done checks a successful done line against what came before it.
func (s *reportState) done(l ReportLine) error {
	all := s.seen[0]
	switch {
	case s.failed:
		return s.errorf("done after a failed step")
	case all == 0 || all&(all+1) != 0 || s.seen[1] != all || s.seen[2] != all:
		return s.errorf("done without guard, write and verify lines for every target")
	}
	want := [2]int64{int64(s.start.Records), int64(s.start.Records)}
	wantBytes := [2]int64{s.start.Bytes, s.start.Bytes}
	if s.records != want || s.bytes != wantBytes || l.Records != s.start.Records || l.Bytes != s.start.Bytes {
		return s.errorf("done, but the counts of records and bytes disagree with the start line")
	}
	return nil
}

// end decides a report that ended before deciding itself.
func (s *reportState) end() error {
	switch {
	case s.started:
		return s.errorf("the report is cut (no done line)")
	case s.early != "":
		return fmt.Errorf("%w: payload %s: the appliance failed before reading a payload: %w", ErrReport, s.id, remote(s.early))
	case s.foreign != "":
		return s.errorf("the report is for payload %s", s.foreign)
	}
	return s.errorf("no report (empty or cut)")
}

func readReport(r io.Reader, id string) error {
	s := &reportState{id: id}
	if id == "" {
		return s.errorf("no payload ID to look for")
	}
	if r == nil {
		return s.errorf("no report")
	}
	lr := &lineReader{br: bufio.NewReaderSize(io.LimitReader(r, maxReportBytes+1), maxReportLine+2)}
	for lines := 1; ; lines++ {
		line, long, err := lr.next()
		if err == io.EOF {
			return s.end()
		}
		if err != nil {
			return fmt.Errorf("%w: payload %s: reading the report: %w", ErrReport, id, err)
		}
		if lr.total > maxReportBytes {
			return s.errorf("no end within %d bytes", maxReportBytes)
		}
		if lines > maxReportLines {
			return s.errorf("no end within %d lines", maxReportLines)
		}
		if end, err := s.feed(line, long); end || err != nil {
			return err
		}
	}
}
