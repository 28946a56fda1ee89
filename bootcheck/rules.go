package bootcheck

import (
	"fmt"
	"image"
	"image/color"
	"time"
)

// Outcome is what a boot check concluded.
type Outcome string

const (
	// Passed: the screen broke no rule.
	Passed Outcome = "passed"
	// Failed: the screen broke a rule (Verdict.Rule).
	Failed Outcome = "failed"
	// TimedOut: no screen passed before the time ran out, and no failing
	// screen had stayed unchanged long enough to fail (Local): the
	// machine may have been booting still.
	TimedOut Outcome = "timed-out"
)

// Rule names the rule that decided a verdict.
type Rule string

// The rules Judge applies, in this order; the first that matches fails
// the screen.
const (
	// RuleBlueScreen: the screen's background is a Windows stop-screen
	// blue (one of Rules.BlueScreenColors) covering most of it.
	RuleBlueScreen Rule = "blue-screen"
	// RuleBlank: the screen is one colour, give or take a cursor: hardly
	// a pixel row holds anything but the background colour.
	RuleBlank Rule = "blank"
	// RuleBootLoaderText: a dark screen with only a few rows of text, as
	// firmware and boot loaders leave it when they stop with an error
	// ("No bootable device", "error: no such partition", "Operating
	// System not found").
	RuleBootLoaderText Rule = "boot-loader-text"
	// RuleScreen: none of the above matched; the screen passes.
	RuleScreen Rule = "screen"
	// RuleTimeout: Local's time ran out before a screen passed or failed;
	// Verdict.Reason tells what the last screen looked like.
	RuleTimeout Rule = "timeout"
)

// Defaults of the Rules settings that a zero value stands for.
const (
	DefaultTolerance    = 24
	DefaultBlankRows    = 0.01
	DefaultBlueCoverage = 0.5
	DefaultDarkLuma     = 64
	DefaultMinTextRows  = 0.3
)

// DefaultBlueScreenColors are the backgrounds of Windows stop screens: the
// VGA blue of the text-mode screens of Windows NT to XP (#0000AA), the
// navy of later graphics-mode ones (#000080), and the lighter blues of
// Windows 8 (#1173B5 or near) and Windows 10 and 11 (#0078D7). Windows 11
// 24H2 draws its stop screen black, which only RuleBootLoaderText may
// catch.
var DefaultBlueScreenColors = []color.RGBA{
	{0x00, 0x00, 0xaa, 0xff},
	{0x00, 0x00, 0x80, 0xff},
	{0x11, 0x73, 0xb5, 0xff},
	{0x00, 0x78, 0xd7, 0xff},
}

// Rules are the settings of the image rules Judge applies to a console
// screenshot. The zero value holds the defaults; a negative BlankRows,
// BlueCoverage or MinTextRows turns its rule off.
type Rules struct {
	// Tolerance is how far (in each of red, green and blue, 0–255) a pixel
	// may be from a colour and still count as that colour: the
	// background, or a stop-screen blue (DefaultTolerance if 0).
	Tolerance int
	// BlankRows: the screen is blank when at most this fraction of its
	// pixel rows hold a pixel that is not the background colour
	// (DefaultBlankRows if 0: a blinking cursor passes as blank, one line
	// of text does not).
	BlankRows float64
	// BlueScreenColors are the stop-screen backgrounds
	// (DefaultBlueScreenColors if nil); BlueCoverage the fraction of the
	// screen such a background must cover (DefaultBlueCoverage if 0).
	BlueScreenColors []color.RGBA
	BlueCoverage     float64
	// DarkLuma is the brightest background (Rec. 601 luma, 0–255) that
	// counts as dark for RuleBootLoaderText (DefaultDarkLuma if 0), and
	// MinTextRows the fraction of pixel rows that must hold text on a
	// dark screen for it to pass (DefaultMinTextRows if 0: in an 80 × 25
	// text mode, about nine lines).
	DarkLuma    int
	MinTextRows float64
}

func (r Rules) withDefaults() Rules {
	if r.Tolerance == 0 {
		r.Tolerance = DefaultTolerance
	}
	if r.BlankRows == 0 {
		r.BlankRows = DefaultBlankRows
	}
	if r.BlueScreenColors == nil {
		r.BlueScreenColors = DefaultBlueScreenColors
	}
	if r.BlueCoverage == 0 {
		r.BlueCoverage = DefaultBlueCoverage
	}
	if r.DarkLuma == 0 {
		r.DarkLuma = DefaultDarkLuma
	}
	if r.MinTextRows == 0 {
		r.MinTextRows = DefaultMinTextRows
	}
	return r
}

// Measures are the numbers a verdict was decided on.
type Measures struct {
	Width  int `json:"width"`
	Height int `json:"height"`
	// Background is the most common colour (#rrggbb), BackgroundLuma its
	// brightness (0–255), and BackgroundCoverage the fraction of the
	// pixels within the tolerance of it.
	Background         string  `json:"background"`
	BackgroundLuma     int     `json:"background_luma"`
	BackgroundCoverage float64 `json:"background_coverage"`
	// BlueScreen tells that the background is a stop-screen blue.
	BlueScreen bool `json:"blue_screen"`
	// TextRows is the fraction of pixel rows holding a pixel that is not
	// the background colour; TextLines counts the runs of such rows
	// (roughly the lines of text).
	TextRows  float64 `json:"text_rows"`
	TextLines int     `json:"text_lines"`
}

// Verdict is the result of a boot check.
type Verdict struct {
	Outcome Outcome `json:"outcome"`
	// Rule is the rule that decided, Reason the same in a sentence with
	// its numbers.
	Rule     Rule     `json:"rule"`
	Reason   string   `json:"reason"`
	Measures Measures `json:"measures"`
	// After is the time from power-on to the screenshot that decided
	// (Local; zero from Judge).
	After time.Duration `json:"after,omitempty"`
}

// Passed tells whether the check passed.
func (v Verdict) Passed() bool { return v.Outcome == Passed }

func (v Verdict) String() string { return fmt.Sprintf("%s (%s): %s", v.Outcome, v.Rule, v.Reason) }

// Judge applies the rules to a console screenshot. The first rule that
// matches fails it:
//
//  1. RuleBlueScreen: the most common colour is within Tolerance of a
//     BlueScreenColors entry and covers at least BlueCoverage;
//  2. RuleBlank: at most BlankRows of the pixel rows hold a pixel beyond
//     Tolerance of that colour;
//  3. RuleBootLoaderText: that colour is dark (luma at most DarkLuma) and
//     fewer than MinTextRows of the rows hold such a pixel;
//
// otherwise the screen passes (RuleScreen).
func Judge(img image.Image, rules Rules) Verdict {
	r := rules.withDefaults()
	m := measure(img, r.Tolerance, r.BlueScreenColors)
	v := Verdict{Outcome: Failed, Measures: m}
	switch {
	case r.BlueCoverage >= 0 && m.BlueScreen && m.BackgroundCoverage >= r.BlueCoverage:
		v.Rule = RuleBlueScreen
		v.Reason = fmt.Sprintf("a stop-screen blue %s covers %.1f%% of the screen (rule: %.1f%% or more)",
			m.Background, 100*m.BackgroundCoverage, 100*r.BlueCoverage)
	case r.BlankRows >= 0 && m.TextRows <= r.BlankRows:
		v.Rule = RuleBlank
		v.Reason = fmt.Sprintf("the screen is %s: %.1f%% of its pixel rows hold anything else (rule: %.1f%% or fewer)",
			m.Background, 100*m.TextRows, 100*r.BlankRows)
	case r.MinTextRows >= 0 && m.BackgroundLuma <= r.DarkLuma && m.TextRows < r.MinTextRows:
		v.Rule = RuleBootLoaderText
		v.Reason = fmt.Sprintf("a dark screen (%s) with %s of text in %.1f%% of its pixel rows (rule: fewer than %.1f%%)",
			m.Background, lines(m.TextLines), 100*m.TextRows, 100*r.MinTextRows)
	default:
		v.Outcome, v.Rule = Passed, RuleScreen
		v.Reason = fmt.Sprintf("%s of text or picture in %.1f%% of the pixel rows on %s (%.1f%% of the screen)",
			lines(m.TextLines), 100*m.TextRows, m.Background, 100*m.BackgroundCoverage)
	}
	return v
}

func lines(n int) string {
	if n == 1 {
		return "1 line"
	}
	return fmt.Sprintf("%d lines", n)
}

// measure finds the background (the most common colour, 5 bits a
// channel, then the mean of the pixels in that bucket) and how much of
// the screen it covers.
func measure(img image.Image, tol int, blues []color.RGBA) Measures {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	m := Measures{Width: w, Height: h}
	if w <= 0 || h <= 0 {
		m.Background = "#000000"
		return m
	}
	rows := rowReader(img)
	row := make([]byte, 3*w)
	var hist [1 << 15]int32
	for y := range h {
		rows(y, row)
		for x := 0; x+2 < len(row); x += 3 {
			hist[int(row[x]>>3)<<10|int(row[x+1]>>3)<<5|int(row[x+2]>>3)]++
		}
	}
	top := 0
	for i, n := range hist {
		if n > hist[top] {
			top = i
		}
	}
	var sum [3]int64
	for y := range h {
		rows(y, row)
		for x := 0; x+2 < len(row); x += 3 {
			if int(row[x]>>3)<<10|int(row[x+1]>>3)<<5|int(row[x+2]>>3) == top {
				sum[0] += int64(row[x])
				sum[1] += int64(row[x+1])
				sum[2] += int64(row[x+2])
			}
		}
	}
	n := int64(hist[top])
	bg := [3]int{int(sum[0] / n), int(sum[1] / n), int(sum[2] / n)}
	// A pixel is background when each channel lies in [lo, hi].
	var lo, hi [3]int
	for c := range 3 {
		lo[c], hi[c] = bg[c]-tol, bg[c]+tol
	}
	covered, textRows, inLine := 0, 0, false
	for y := range h {
		rows(y, row)
		text := false
		for x := 0; x+2 < len(row); x += 3 {
			r, g, b := int(row[x]), int(row[x+1]), int(row[x+2])
			if r >= lo[0] && r <= hi[0] && g >= lo[1] && g <= hi[1] && b >= lo[2] && b <= hi[2] {
				covered++
			} else {
				text = true
			}
		}
		if text {
			textRows++
			if !inLine {
				m.TextLines++
			}
		}
		inLine = text
	}
	m.Background = fmt.Sprintf("#%02x%02x%02x", bg[0], bg[1], bg[2])
	m.BackgroundLuma = (299*bg[0] + 587*bg[1] + 114*bg[2]) / 1000
	m.BackgroundCoverage = float64(covered) / float64(w*h)
	m.TextRows = float64(textRows) / float64(h)
	for _, c := range blues {
		if abs(bg[0]-int(c.R)) <= tol && abs(bg[1]-int(c.G)) <= tol && abs(bg[2]-int(c.B)) <= tol {
			m.BlueScreen = true
		}
	}
	return m
}

// rowReader returns a function that fills a row of red, green and blue
// bytes from img, fast for the types PNG and PPM decoding give.
func rowReader(img image.Image) func(y int, dst []byte) {
	b := img.Bounds()
	switch im := img.(type) {
	case *image.RGBA:
		return func(y int, dst []byte) { copyRGB(dst, im.Pix[im.PixOffset(b.Min.X, b.Min.Y+y):]) }
	case *image.NRGBA:
		return func(y int, dst []byte) { copyRGB(dst, im.Pix[im.PixOffset(b.Min.X, b.Min.Y+y):]) }
	}
	return func(y int, dst []byte) {
		for x := range b.Dx() {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			dst[3*x], dst[3*x+1], dst[3*x+2] = uint8(r>>8), uint8(g>>8), uint8(bl>>8)
		}
	}
}

// copyRGB copies len(dst)/3 pixels from 4-byte RGBA samples.
func copyRGB(dst, src []byte) {
	for i, j := 0, 0; i < len(dst); i, j = i+3, j+4 {
		dst[i], dst[i+1], dst[i+2] = src[j], src[j+1], src[j+2]
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
