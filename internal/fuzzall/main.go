// Command fuzzall runs every fuzz target of the module, a few at a time,
// each for the same time, and prints a table: target, executions, rate,
// new corpus entries ("new interesting") and result (ok, FAIL or stall).
//
//	go run ./internal/fuzzall -time 10m -parallel 2
//	go run ./internal/fuzzall -time 1m -run 'aipimage|vmdk'   # a subset
//
// Targets are found with `go test -list '^Fuzz'` over -pkgs. Each runs as
// `go test -run '^$' -fuzz '^Name$' -parallel 1` (one fuzzing worker), so
// -parallel is the number of targets, and of CPUs, busy at once. A run
// whose execution count does not rise for -stall is killed and reported
// as a stall: one input that takes that long (Go's fuzzer has no timeout
// per input) or a minimization that does not end. Failing inputs are
// written by go test into the package's testdata/fuzz as usual; the new
// corpus entries stay in the Go build cache.
//
// Minimizations are bounded by a count (-minimizetime 500x): Go minimizes
// every input that finds new coverage, fuzzes nothing on that worker
// meanwhile, and leaves those executions out of its count; its quadratic
// minimizer does not finish on inputs of a few KiB, so under the default
// of 60 s each new input cost a minute of "0 execs/sec".
//
// It is not run by `go test` or by CI: it takes -time × targets / -parallel.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

type config struct {
	fuzzTime     time.Duration
	parallel     int
	stall        time.Duration
	minimizeTime string
	pkgs         []string
	match        *regexp.Regexp
	verbose      bool
}

func main() {
	var cfg config
	var pkgs, match string
	flag.DurationVar(&cfg.fuzzTime, "time", time.Minute, "fuzzing time per target")
	flag.IntVar(&cfg.parallel, "parallel", 2, "targets fuzzed at once (each with one worker)")
	flag.DurationVar(&cfg.stall, "stall", 60*time.Second, "a run whose executions do not rise for this long is a stall")
	flag.StringVar(&cfg.minimizeTime, "minimizetime", "500x", "go test -fuzzminimizetime: bounds each minimization (a duration, or a count of executions as Nx)")
	flag.StringVar(&pkgs, "pkgs", "./...", "packages to look for targets in (space-separated patterns)")
	flag.StringVar(&match, "run", "", "only targets whose package.Name matches this regular expression")
	flag.BoolVar(&cfg.verbose, "v", false, "print every line go test prints")
	flag.Parse()
	if cfg.parallel < 1 || cfg.fuzzTime <= 0 || cfg.stall <= 0 {
		fmt.Fprintln(os.Stderr, "fuzzall: -parallel, -time and -stall must be positive")
		os.Exit(2)
	}
	cfg.pkgs = strings.Fields(pkgs)
	if match != "" {
		re, err := regexp.Compile(match)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fuzzall: -run:", err)
			os.Exit(2)
		}
		cfg.match = re
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fuzzall:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// result is the outcome of one target's run.
type result struct {
	target target
	status status
	stall  bool
	err    error    // go test failed to run or exited non-zero
	tail   []string // go test's last lines, printed when the run is not ok
	// deadlineRace: go test failed with Go's -fuzztime deadline race
	// (go.dev/issue/75804, fixed in Go 1.27) and the corpus replays clean.
	deadlineRace bool
}

// tailLines is how many of go test's last lines a result keeps: a
// failure's message, its input's file and the panic's first frames.
const tailLines = 40

// report prints the run's verdict and, with withTail, go test's last
// lines for a run that failed or stalled (-v has printed them already).
func (r result) report(out io.Writer, withTail bool) {
	v := r.verdict()
	fmt.Fprintf(out, "%-60s %s after %d execs\n", r.target, v, r.status.Execs)
	if withTail && v != "ok" && v != "stopped" {
		for _, line := range r.tail {
			fmt.Fprintf(out, "    %s\n", line)
		}
	}
}

func (r result) verdict() string {
	switch {
	case r.stall:
		return "stall"
	case errors.Is(r.err, context.Canceled) && !r.status.Failed:
		return "stopped" // fuzzall was interrupted
	case r.status.Failed || r.err != nil:
		return "FAIL"
	}
	return "ok"
}

func run(ctx context.Context, cfg config, out io.Writer) (bool, error) {
	targets, err := listTargets(ctx, cfg.pkgs)
	if err != nil {
		return false, err
	}
	if cfg.match != nil {
		var kept []target
		for _, t := range targets {
			if cfg.match.MatchString(t.String()) {
				kept = append(kept, t)
			}
		}
		targets = kept
	}
	if len(targets) == 0 {
		return false, errors.New("no fuzz targets")
	}
	fmt.Fprintf(out, "fuzzing %d targets for %v each, %d at a time\n", len(targets), cfg.fuzzTime, cfg.parallel)
	results := make([]result, len(targets))
	sem := make(chan struct{}, cfg.parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex // serializes progress output
	for i, t := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			results[i] = result{target: t, err: ctx.Err()}
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			r := fuzzOne(ctx, cfg, t, func(line string) {
				if cfg.verbose {
					mu.Lock()
					fmt.Fprintf(out, "%s: %s\n", t, line)
					mu.Unlock()
				}
			})
			results[i] = r
			mu.Lock()
			r.report(out, !cfg.verbose)
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Fprintln(out)
	return printTable(out, results), nil
}

// listTargets runs `go test -list '^Fuzz'` over the patterns.
func listTargets(ctx context.Context, pkgs []string) ([]target, error) {
	args := append([]string{"test", "-run", "^$", "-list", "^Fuzz"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -list: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	return parseList(&stdout)
}

// fuzzOne runs one target to its end, or until it stalls.
func fuzzOne(ctx context.Context, cfg config, t target, echo func(string)) result {
	r := result{target: t}
	cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+t.Name+"$",
		"-fuzztime", cfg.fuzzTime.String(), "-fuzzminimizetime", cfg.minimizeTime,
		"-parallel", "1", "-timeout", "0", t.Pkg)
	// Its own process group: a stalled run is killed with its test binary
	// and fuzzing workers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		r.err = err
		return r
	}
	waited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		waited <- err
	}()

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, pr) // a line over 1 MiB: keep draining
	}()

	clock := stallClock{limit: cfg.stall}
	// Past -time plus a generous margin for building and minimizing, the
	// run is stuck even if it keeps counting.
	deadline := time.NewTimer(cfg.fuzzTime + 10*time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	kill := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	done := ctx.Done()
	for lines != nil {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				break
			}
			echo(line)
			if len(r.tail) == tailLines {
				r.tail = r.tail[1:]
			}
			r.tail = append(r.tail, line)
			if r.status.feed(line) {
				clock.progress(time.Now())
			}
		case now := <-tick.C:
			if clock.stalled(now) && !r.stall {
				r.stall = true
				kill()
			}
		case <-deadline.C:
			if !r.stall {
				r.stall = true
				kill()
			}
		case <-done:
			kill()
			r.err = ctx.Err()
			done = nil
		}
	}
	if err := <-waited; err != nil && !r.stall && r.err == nil {
		r.err = err
	}
	if r.status.deadlineRace() && ctx.Err() == nil {
		// Go's coordinator race at the -fuzztime boundary: a run that
		// found nothing fails with "context deadline exceeded". Replaying
		// every corpus entry tells that apart from a failure the run did
		// not get to write: a run of a count of executions has no deadline
		// to race, and its baseline (which the count includes) runs the
		// corpus first.
		replay := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-fuzz", "^"+t.Name+"$",
			"-fuzztime", fmt.Sprintf("%dx", r.status.Corpus+1), "-parallel", "1", "-timeout", "0", t.Pkg)
		if out, err := replay.CombinedOutput(); err == nil {
			r.err, r.status.Failed, r.deadlineRace = nil, false, true
		} else {
			r.tail = append(r.tail, "replaying the corpus after the deadline failure also failed:", string(out))
		}
	}
	return r
}

// printTable prints the results and reports whether all were ok.
func printTable(out io.Writer, results []result) bool {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\texecutions\texec/s\tnew interesting\tresult\t")
	allOK := true
	var notes []string
	for _, r := range results {
		v := r.verdict()
		if v != "ok" {
			allOK = false
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%s\t\n", r.target, r.status.Execs, r.status.Rate(), r.status.Interesting, v)
		switch {
		case r.stall:
			notes = append(notes, fmt.Sprintf("%s: no new executions for the stall limit after %d (killed)", r.target, r.status.Execs))
		case v == "stopped":
			notes = append(notes, fmt.Sprintf("%s: interrupted after %d executions", r.target, r.status.Execs))
		case r.deadlineRace:
			notes = append(notes, fmt.Sprintf("%s: go test said \"context deadline exceeded\" as -time ran out, with no failing input (Go's coordinator race, go.dev/issue/75804, fixed in Go 1.27); its corpus replays clean", r.target))
		case v == "FAIL":
			note := fmt.Sprintf("%s: %s", r.target, r.status.Message)
			if r.status.FailingFile != "" {
				note += " (input: " + r.status.FailingFile + ")"
			}
			if r.status.Message == "" && r.err != nil {
				note += r.err.Error()
			}
			notes = append(notes, note)
		}
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(out, n)
	}
	return allOK
}
