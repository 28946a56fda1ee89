package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/standbykit/standbykit/bootpoint"
)

// progressPrinter prints what a Standby reports: a line per boot point
// made and, for a transfer that lasts (seeding a large disk, a large
// boot point, its verification), a line every few seconds with the bytes
// done, the rate and the time left. Short transfers print nothing, so
// small runs stay quiet.
func progressPrinter(out io.Writer) func(bootpoint.Event) {
	return (&progress{out: out, now: time.Now}).event
}

// taskProgress is progressPrinter for one task of a manager pass, whose
// tasks run at once: only long transfers print, their lines start with
// the task's name, and each is written whole under mu.
func taskProgress(out io.Writer, mu *sync.Mutex, task string) func(bootpoint.Event) {
	p := &progress{out: out, now: time.Now, task: task, mu: mu}
	return p.event
}

// Pace of the transfer lines.
const (
	progressQuiet = 2 * time.Second // a transfer shorter than this prints nothing
	progressEvery = 5 * time.Second // then a line this often
)

type progress struct {
	out io.Writer
	now func() time.Time
	// With task set, lines start with it and are written under mu, and
	// boot points made print nothing (the pass reports them).
	task string
	mu   *sync.Mutex

	pointStart time.Time
	cur        transferKey
	start      time.Time // of the current transfer
	startDone  int64
	lastLine   time.Time
	printed    bool
}

type transferKey struct {
	seq, disk int
	step      string
}

func (p *progress) event(e bootpoint.Event) {
	now := p.now()
	switch e.Step {
	case "inspect":
		p.pointStart = now
	case "done":
		if p.task == "" {
			p.printf("point %d → boot point %d: %s written in %s\n", e.Sequence, e.Sequence, bytesHuman(e.Bytes), now.Sub(p.pointStart).Round(time.Millisecond))
		}
	case bootpoint.StepStream, bootpoint.StepUpload, bootpoint.StepPayload, bootpoint.StepVerify:
		p.transfer(now, e)
	}
}

func (p *progress) transfer(now time.Time, e bootpoint.Event) {
	key := transferKey{e.Sequence, e.Disk, e.Step}
	if key != p.cur || p.start.IsZero() {
		p.cur, p.start, p.startDone, p.lastLine, p.printed = key, now, e.Done, now, false
	}
	elapsed := now.Sub(p.start)
	if e.Done >= e.Total {
		if p.printed {
			p.printf("%s: %s: done, %s in %s%s\n", subject(e), what(e), bytesHuman(e.Total), round(elapsed), rate(e.Total-p.startDone, elapsed))
		}
		p.start = time.Time{}
		return
	}
	if !p.printed && elapsed < progressQuiet || p.printed && now.Sub(p.lastLine) < progressEvery {
		return
	}
	line := fmt.Sprintf("%s: %s: %s of %s (%d%%)", subject(e), what(e), bytesHuman(e.Done), bytesHuman(e.Total), e.Done*100/e.Total)
	if done := e.Done - p.startDone; done > 0 && elapsed > 0 {
		left := time.Duration(float64(e.Total-e.Done) / float64(done) * float64(elapsed))
		line += fmt.Sprintf("%s, %s left", rate(done, elapsed), round(left))
	}
	p.printf("%s\n", line)
	p.lastLine, p.printed = now, true
}

func (p *progress) printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if p.task == "" {
		fmt.Fprint(p.out, "     "+line)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.out, p.task+": "+line)
}

func subject(e bootpoint.Event) string {
	if e.Step == bootpoint.StepVerify {
		return fmt.Sprintf("boot point %d", e.Sequence)
	}
	return fmt.Sprintf("point %d", e.Sequence)
}

func what(e bootpoint.Event) string {
	disk := fmt.Sprintf("disk %d", e.Disk)
	if e.Disk < 0 {
		disk = "the payload"
	}
	switch e.Step {
	case bootpoint.StepStream:
		return "encoding " + disk
	case bootpoint.StepUpload:
		return "uploading " + disk
	case bootpoint.StepPayload:
		return "building the payload"
	}
	return "verifying " + disk
}

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf(", %s/s", bytesHuman(int64(float64(n)/d.Seconds())))
}

func round(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[i])
}
