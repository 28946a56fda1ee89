package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// target is one fuzz function of one package.
type target struct {
	Pkg  string // import path
	Name string // FuzzXxx
}

func (t target) String() string { return t.Pkg + "." + t.Name }

// parseList reads the output of `go test -list '^Fuzz' ./...`: a
// package's function names come first, then its "ok  <pkg>  <time>" line.
// A package whose test binary does not build fails the listing.
func parseList(r io.Reader) ([]target, error) {
	var out []target
	var names []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case len(fields) == 1 && strings.HasPrefix(line, "Fuzz"):
			names = append(names, line)
		case fields[0] == "ok" && len(fields) >= 2:
			for _, n := range names {
				out = append(out, target{Pkg: fields[1], Name: n})
			}
			names = nil
		case fields[0] == "?":
			// A package without test files.
		case fields[0] == "FAIL" || strings.HasPrefix(line, "#"):
			return nil, fmt.Errorf("listing fuzz targets: %s", line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(names) != 0 {
		return nil, fmt.Errorf("listing fuzz targets: %v without their package's ok line", names)
	}
	return out, nil
}

// status is what `go test -fuzz` has said about its run so far.
type status struct {
	Elapsed     time.Duration // the fuzzer's own clock
	Execs       int64
	Interesting int64 // new corpus entries found by this run ("new interesting")
	Corpus      int64 // entries in the corpus: seeds, cached and new ("total")
	Baseline    int64 // inputs of the corpus run so far before fuzzing starts
	Fuzzing     bool  // past the seed corpus / baseline coverage phase
	Failed      bool  // a "--- FAIL" line or a failing input
	FailingFile string
	Message     string // the first line that explains a failure
}

var (
	execsLine    = regexp.MustCompile(`^fuzz: elapsed: (\S+), execs: (\d+) \((\d+)/sec\)(?:, new interesting: (\d+) \(total: (\d+)\))?`)
	baselineLine = regexp.MustCompile(`^fuzz: elapsed: (\S+), (?:gathering baseline coverage|testing seed corpus): (\d+)/(\d+) completed(, now fuzzing)?`)
	failingFile  = regexp.MustCompile(`Failing input written to (\S+)`)
)

// feed takes one line of output and reports whether the run made
// progress: executions or baseline inputs went up.
func (s *status) feed(line string) (progress bool) {
	line = strings.TrimRight(line, "\r")
	if m := execsLine.FindStringSubmatch(line); m != nil {
		s.Fuzzing = true
		if d, err := time.ParseDuration(m[1]); err == nil {
			s.Elapsed = d
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		progress = n > s.Execs
		s.Execs = max(s.Execs, n)
		if m[4] != "" {
			s.Interesting, _ = strconv.ParseInt(m[4], 10, 64)
			s.Corpus, _ = strconv.ParseInt(m[5], 10, 64)
		}
		return progress
	}
	if m := baselineLine.FindStringSubmatch(line); m != nil {
		if d, err := time.ParseDuration(m[1]); err == nil {
			s.Elapsed = d
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		progress = n > s.Baseline
		s.Baseline = max(s.Baseline, n)
		total, _ := strconv.ParseInt(m[3], 10, 64)
		s.Corpus = max(s.Corpus, total)
		if m[4] != "" {
			s.Fuzzing = true
		}
		return progress
	}
	if m := failingFile.FindStringSubmatch(line); m != nil {
		s.Failed, s.FailingFile = true, m[1]
		return false
	}
	trimmed := strings.TrimSpace(line)
	if strings.HasPrefix(trimmed, "--- FAIL") || strings.HasPrefix(trimmed, "panic:") ||
		strings.HasPrefix(trimmed, "fuzzing process hung") || strings.Contains(trimmed, "fuzzing process hung or terminated") {
		s.Failed = true
	}
	if s.Failed && s.Message == "" && trimmed != "" && !strings.HasPrefix(trimmed, "--- FAIL") && !strings.HasPrefix(trimmed, "fuzz: elapsed") {
		s.Message = trimmed
	}
	return false
}

// Rate is executions per second of fuzzing time.
func (s *status) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Execs) / s.Elapsed.Seconds()
}

// stallClock tells a stalled run: one whose executions have not gone up
// for a while. It starts with the first line of progress, so that
// building the test binary does not count.
type stallClock struct {
	limit time.Duration
	last  time.Time // zero until the first progress
}

func (c *stallClock) progress(now time.Time) { c.last = now }

func (c *stallClock) stalled(now time.Time) bool {
	return !c.last.IsZero() && now.Sub(c.last) >= c.limit
}

// deadlineRace reports whether the run failed only as Go's fuzzing
// coordinator fails a run that found nothing when -fuzztime runs out under
// load: "context deadline exceeded", and no failing input written.
func (s status) deadlineRace() bool {
	return s.Failed && s.Message == "context deadline exceeded" && s.FailingFile == ""
}
