package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// listOutput is what `go test -list '^Fuzz' ./...` printed for part of
// this module (go 1.26).
const listOutput = `FuzzOpenAndRead
FuzzHeader
ok  	github.com/standbykit/standbykit/aipimage	0.012s
?   	github.com/standbykit/standbykit/examples/standby	[no test files]
ok  	github.com/standbykit/standbykit/bootpoint	0.021s
FuzzOpen
ok  	github.com/standbykit/standbykit/p2v/ntfs	0.009s
FuzzOpen
ok  	github.com/standbykit/standbykit/p2v/ext4	0.010s
`

func TestParseList(t *testing.T) {
	got, err := parseList(strings.NewReader(listOutput))
	require.NoError(t, err)
	require.Equal(t, []target{
		{"github.com/standbykit/standbykit/aipimage", "FuzzOpenAndRead"},
		{"github.com/standbykit/standbykit/aipimage", "FuzzHeader"},
		{"github.com/standbykit/standbykit/p2v/ntfs", "FuzzOpen"},
		{"github.com/standbykit/standbykit/p2v/ext4", "FuzzOpen"},
	}, got)

	_, err = parseList(strings.NewReader("FuzzX\nFAIL\tgithub.com/x/y [build failed]\n"))
	require.ErrorContains(t, err, "build failed")
	_, err = parseList(strings.NewReader("FuzzX\n"))
	require.Error(t, err, "names without their package")
}

// A run of go test -fuzz that stalls in a minimization and then goes on.
const fuzzOutput = `fuzz: elapsed: 0s, gathering baseline coverage: 0/4 completed
fuzz: elapsed: 1s, gathering baseline coverage: 4/4 completed, now fuzzing with 1 workers
fuzz: elapsed: 3s, execs: 10 (3/sec), new interesting: 0 (total: 4)
fuzz: elapsed: 6s, execs: 10 (0/sec), new interesting: 0 (total: 4)
fuzz: elapsed: 1m3s, execs: 95 (29/sec), new interesting: 2 (total: 6)
fuzz: elapsed: 1m6s, execs: 95 (0/sec), new interesting: 2 (total: 6)
PASS
ok  	github.com/standbykit/standbykit/aipimage	66.1s
`

func TestStatusFeed(t *testing.T) {
	var s status
	var progress []bool
	for _, line := range strings.Split(strings.TrimSpace(fuzzOutput), "\n") {
		progress = append(progress, s.feed(line))
	}
	require.Equal(t, []bool{false, true, true, false, true, false, false, false}, progress)
	require.Equal(t, int64(95), s.Execs)
	require.Equal(t, int64(2), s.Interesting)
	require.Equal(t, 66*time.Second, s.Elapsed)
	require.True(t, s.Fuzzing)
	require.False(t, s.Failed)
	require.InDelta(t, 95.0/66, s.Rate(), 1e-9)
}

func TestStatusFeedWithoutCoverage(t *testing.T) {
	// Without coverage instrumentation (a binary built without -fuzz),
	// the lines have no "new interesting" part.
	var s status
	require.True(t, s.feed("fuzz: elapsed: 3s, execs: 105331 (35077/sec)"))
	require.Equal(t, int64(105331), s.Execs)
	require.Zero(t, s.Interesting)
}

func TestStatusFeedFailure(t *testing.T) {
	out := `fuzz: elapsed: 0s, gathering baseline coverage: 0/3 completed
fuzz: elapsed: 0s, gathering baseline coverage: 3/3 completed, now fuzzing with 1 workers
fuzz: minimizing 6147-byte failing input file
fuzz: elapsed: 2s, minimizing
--- FAIL: FuzzOpenAndRead (2.31s)
    --- FAIL: FuzzOpenAndRead (0.00s)
        fuzz_test.go:123: untyped error: EOF

    Failing input written to testdata/fuzz/FuzzOpenAndRead/771e938e4458e983
    To re-run:
    go test -run=FuzzOpenAndRead/771e938e4458e983
FAIL
exit status 1
FAIL	github.com/standbykit/standbykit/aipimage	2.4s
`
	var s status
	for _, line := range strings.Split(out, "\n") {
		s.feed(line)
	}
	require.True(t, s.Failed)
	require.Equal(t, "fuzz_test.go:123: untyped error: EOF", s.Message)
	require.Equal(t, "testdata/fuzz/FuzzOpenAndRead/771e938e4458e983", s.FailingFile)

	var hung status
	hung.feed("--- FAIL: FuzzOpenAndRead (41.00s)")
	hung.feed("    fuzzing process hung or terminated unexpectedly: exit status 2")
	require.True(t, hung.Failed)
	require.Equal(t, "fuzzing process hung or terminated unexpectedly: exit status 2", hung.Message)
}

func TestStallClock(t *testing.T) {
	c := stallClock{limit: time.Minute}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	require.False(t, c.stalled(t0.Add(time.Hour)), "no progress yet: still building")
	c.progress(t0)
	require.False(t, c.stalled(t0.Add(59*time.Second)))
	require.True(t, c.stalled(t0.Add(time.Minute)))
	c.progress(t0.Add(time.Minute))
	require.False(t, c.stalled(t0.Add(time.Minute+time.Second)))
}

func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	ok := printTable(&b, []result{
		{target: target{"example.com/a", "FuzzA"}, status: status{Execs: 1200, Interesting: 3, Elapsed: 2 * time.Second}},
		{target: target{"example.com/b", "FuzzB"}, status: status{Execs: 95, Elapsed: time.Minute}, stall: true},
		{target: target{"example.com/c", "FuzzC"}, status: status{Execs: 7, Failed: true, Message: "boom", FailingFile: "testdata/fuzz/FuzzC/1"}},
		{target: target{"example.com/d", "FuzzD"}, status: status{Execs: 9}, err: context.Canceled},
	})
	require.False(t, ok)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 8)
	require.Regexp(t, `^example.com/d.FuzzD\s+9\s+0\s+0\s+stopped`, lines[4])
	require.Contains(t, lines[7], "interrupted after 9 executions")
	require.Regexp(t, `^target\s+executions\s+exec/s\s+new interesting\s+result`, lines[0])
	require.Regexp(t, `^example.com/a.FuzzA\s+1200\s+600\s+3\s+ok`, lines[1])
	require.Regexp(t, `^example.com/b.FuzzB\s+95\s+2\s+0\s+stall`, lines[2])
	require.Regexp(t, `^example.com/c.FuzzC\s+7\s+0\s+0\s+FAIL`, lines[3])
	require.Contains(t, lines[6], "boom (input: testdata/fuzz/FuzzC/1)")
}

// A run that is not ok is reported with go test's last lines.
func TestReportTail(t *testing.T) {
	r := result{target: target{Pkg: "example.com/p", Name: "FuzzX"}, stall: true, tail: []string{"fuzz: elapsed: 3m0s, execs: 10 (0/sec)"}}
	var b strings.Builder
	r.report(&b, true)
	require.Equal(t, "example.com/p.FuzzX"+strings.Repeat(" ", 60-len("example.com/p.FuzzX"))+" stall after 0 execs\n    fuzz: elapsed: 3m0s, execs: 10 (0/sec)\n", b.String())
	b.Reset()
	r.report(&b, false)
	require.NotContains(t, b.String(), "elapsed", "with -v the lines were printed as they came")
	b.Reset()
	r.stall = false
	r.report(&b, true)
	require.NotContains(t, b.String(), "elapsed", "an ok run has no tail")
}

// Go's coordinator fails a run that found nothing when -fuzztime runs
// out under load; a failure with an input is never taken for that.
func TestDeadlineRace(t *testing.T) {
	feed := func(out string) status {
		var s status
		for _, line := range strings.Split(out, "\n") {
			s.feed(line)
		}
		return s
	}
	race := feed(`fuzz: elapsed: 10m0s, execs: 3969754 (6616/sec), new interesting: 3 (total: 41)
--- FAIL: FuzzPartitionTable (600.21s)
    context deadline exceeded
FAIL
exit status 1
FAIL	github.com/standbykit/standbykit/p2v	600.5s`)
	require.True(t, race.Failed)
	require.True(t, race.deadlineRace())
	require.EqualValues(t, 41, race.Corpus, "the replay runs the whole corpus")

	crash := feed(`--- FAIL: FuzzPartitionTable (12.00s)
    --- FAIL: FuzzPartitionTable (0.00s)
        testing.go:1: context deadline exceeded

    Failing input written to testdata/fuzz/FuzzPartitionTable/0123456789abcdef
FAIL`)
	require.True(t, crash.Failed)
	require.False(t, crash.deadlineRace(), "a failure with an input is a finding")

	var b strings.Builder
	printTable(&b, []result{{target: target{Pkg: "p", Name: "FuzzX"}, deadlineRace: true}})
	require.Contains(t, b.String(), "go.dev/issue/75804")
	require.Contains(t, b.String(), " ok ")
}
