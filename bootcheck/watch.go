package bootcheck

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"time"
)

// errQemuExited: QEMU ended while the check watched it.
var errQemuExited = errors.New("bootcheck: qemu exited")

// changedFraction is the share of pixels that must differ for a screen
// to count as changed: more than a blinking cursor, less than a
// spinner.
const changedFraction = 0.001

// watcher takes and judges the screenshots of one running machine.
type watcher struct {
	o LocalOptions
	// shoot takes a screenshot.
	shoot func(context.Context) (*image.RGBA, error)
	// start is the machine's power-on; exited is closed when it ends.
	start  time.Time
	exited <-chan struct{}
}

// watch returns the verdict and the screenshot that decided it (or the
// last one taken, with an error).
func (w watcher) watch(ctx context.Context) (Verdict, *image.RGBA, error) {
	deadline := w.start.Add(w.o.Timeout)
	if err := w.sleepUntil(ctx, w.start.Add(w.o.Settle)); err != nil {
		return Verdict{}, nil, err
	}
	var last *image.RGBA
	var changed time.Time
	var judged Verdict
	for {
		img, err := w.shoot(ctx)
		if err != nil {
			return Verdict{}, last, err
		}
		now := time.Now()
		moved := last == nil || differs(last, img)
		if moved {
			// An unchanged screen keeps its verdict.
			changed, last, judged = now, img, Judge(img, w.o.Rules)
		}
		v := judged
		v.After = now.Sub(w.start)
		still := now.Sub(changed)
		w.o.Log.Debug("bootcheck: screenshot", "after", v.After.Round(time.Millisecond), "outcome", v.Outcome,
			"rule", v.Rule, "unchanged", still.Round(time.Millisecond), "reason", v.Reason)
		switch next := now.Add(w.o.Interval); {
		case v.Passed():
			return v, last, nil
		case still >= w.o.Stable:
			v.Reason += fmt.Sprintf("; the screen was unchanged for %v", still.Round(time.Second))
			return v, last, nil
		case next.After(deadline):
			return Verdict{
				Outcome: TimedOut, Rule: RuleTimeout, Measures: v.Measures, After: v.After,
				Reason: fmt.Sprintf("no screen passed within %v, and the last one, unchanged for %v, failed by %s: %s",
					w.o.Timeout, still.Round(time.Millisecond), v.Rule, v.Reason),
			}, last, nil
		default:
			if err := w.sleepUntil(ctx, next); err != nil {
				return Verdict{}, last, err
			}
		}
	}
}

// sleepUntil waits until t, unless ctx ends or QEMU exits first.
func (w watcher) sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("bootcheck: %w", ctx.Err())
	case <-w.exited:
		return errQemuExited
	case <-timer.C:
		return nil
	}
}

// screendump has QEMU write the screen as a PPM file into the directory
// work and decodes it.
func screendump(ctx context.Context, mon *qmp, work string, exited <-chan struct{}) (*image.RGBA, error) {
	path := filepath.Join(work, "screen.ppm")
	os.Remove(path)
	if _, err := mon.run(ctx, "screendump", map[string]string{"filename": path}); err != nil {
		select {
		case <-exited:
			return nil, errQemuExited
		default:
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bootcheck: screendump: %w", err)
	}
	defer f.Close()
	img, err := DecodePPM(f)
	if err != nil {
		return nil, fmt.Errorf("bootcheck: QEMU's screendump: %w", err)
	}
	return img, nil
}

// differs tells whether more than changedFraction of the pixels of a
// and b differ.
func differs(a, b *image.RGBA) bool {
	if a.Bounds() != b.Bounds() {
		return true
	}
	limit, n := int(changedFraction*float64(len(a.Pix)/4)), 0
	for i := 0; i < len(a.Pix); i += 4 {
		if a.Pix[i] != b.Pix[i] || a.Pix[i+1] != b.Pix[i+1] || a.Pix[i+2] != b.Pix[i+2] {
			if n++; n > limit {
				return true
			}
		}
	}
	return false
}

// writePNG writes img to path as PNG, atomically.
func writePNG(path string, img image.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".screenshot-*.png")
	if err != nil {
		return fmt.Errorf("bootcheck: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = png.Encode(tmp, img)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("bootcheck: writing the screenshot: %w", err)
	}
	return nil
}
