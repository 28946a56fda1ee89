package bootcheck

import (
	"context"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// screens returns a shoot function that gives the images in turn, the
// last one from then on, or err once they are used up if err is set.
func screens(err error, imgs ...*image.RGBA) (func(context.Context) (*image.RGBA, error), *int) {
	n := new(int)
	return func(context.Context) (*image.RGBA, error) {
		i := *n
		*n++
		if i >= len(imgs) {
			if err != nil {
				return nil, err
			}
			i = len(imgs) - 1
		}
		return imgs[i], nil
	}, n
}

// console is a small text screen, 80 × 25 characters of 2 × 4 pixels,
// black with lines lines of grey text, the last one cut after cols
// characters: small, so that judging it is quick even under the race
// detector.
func console(lines, cols int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 160, 100))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.Black), image.Point{}, draw.Src)
	for l := range lines {
		n := 80
		if l == lines-1 {
			n = cols
		}
		for c := 0; c < n; c += 2 {
			draw.Draw(img, image.Rect(2*c, l*4+1, 2*c+3, l*4+3), image.NewUniform(color.RGBA{0xaa, 0xaa, 0xaa, 0xff}), image.Point{}, draw.Src)
		}
	}
	return img
}

func TestWatch(t *testing.T) {
	// Stable is long enough for a few judgements under the race detector.
	fast := LocalOptions{Settle: time.Millisecond, Interval: 5 * time.Millisecond, Stable: time.Second, Timeout: 10 * time.Second}.withDefaults()
	errShot := errors.New("no screen")
	loading := console(3, 40)
	cases := []struct {
		name    string
		opts    LocalOptions
		imgs    []*image.RGBA
		err     error
		outcome Outcome
		rule    Rule
		wantErr bool
	}{
		// Boot loader lines, then the console fills: passes.
		{"passes", fast, []*image.RGBA{loading, loading, loading, console(25, 80)}, nil, Passed, RuleScreen, false},
		// A cursor's blink is no change: the screen stays a failure.
		{"stuck", fast, []*image.RGBA{loading, withCursor(loading)}, nil, Failed, RuleBootLoaderText, false},
		// Still printing when the time runs out.
		{"times-out", LocalOptions{Settle: time.Millisecond, Interval: 5 * time.Millisecond, Stable: time.Minute, Timeout: time.Second}.withDefaults(),
			nil, nil, TimedOut, RuleTimeout, false},
		// Unchanged, but not for Stable, when the time runs out.
		{"stuck-at-timeout", LocalOptions{Settle: time.Millisecond, Interval: 5 * time.Millisecond, Stable: time.Minute, Timeout: 300 * time.Millisecond}.withDefaults(),
			[]*image.RGBA{loading}, nil, TimedOut, RuleTimeout, false},
		{"error", fast, []*image.RGBA{loading, loading}, errShot, "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shoot, n := screens(c.err, c.imgs...)
			if c.imgs == nil {
				shoot = printing(n)
			}
			w := watcher{o: c.opts, shoot: shoot, start: time.Now(), exited: make(chan struct{})}
			v, last, err := w.watch(t.Context())
			t.Logf("%d screenshots: %v", *n, v)
			if c.wantErr {
				require.ErrorIs(t, err, c.err)
				assert.NotNil(t, last, "the last screenshot taken")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.outcome, v.Outcome)
			assert.Equal(t, c.rule, v.Rule)
			assert.NotNil(t, last)
			assert.Positive(t, v.After)
			assert.LessOrEqual(t, v.After, c.opts.Timeout+time.Second)
		})
	}

	// The caller's context, and QEMU's end, stop the watch.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	shoot, _ := screens(nil, loading)
	_, _, err := watcher{o: fast, shoot: shoot, start: time.Now(), exited: make(chan struct{})}.watch(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	exited := make(chan struct{})
	close(exited)
	slow := LocalOptions{Settle: time.Minute}.withDefaults()
	_, _, err = watcher{o: slow, shoot: shoot, start: time.Now(), exited: exited}.watch(t.Context())
	assert.ErrorIs(t, err, errQemuExited)
}

// withCursor adds a cursor under the last line of img.
func withCursor(img *image.RGBA) *image.RGBA {
	c := image.NewRGBA(img.Rect)
	copy(c.Pix, img.Pix)
	draw.Draw(c, image.Rect(0, 15, 2, 16), image.NewUniform(color.White), image.Point{}, draw.Src)
	return c
}

// printing is a screen that gains a character at each screenshot, never
// passing; n counts the screenshots.
func printing(n *int) func(context.Context) (*image.RGBA, error) {
	return func(context.Context) (*image.RGBA, error) {
		i := *n
		*n++
		return console(1+i/80%4, 1+i%80), nil
	}
}
