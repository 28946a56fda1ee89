package bootcheck_test

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootcheck"
)

var (
	black   = color.RGBA{0, 0, 0, 0xff}
	grey    = color.RGBA{0xaa, 0xaa, 0xaa, 0xff}
	white   = color.RGBA{0xff, 0xff, 0xff, 0xff}
	vgaBlue = color.RGBA{0x00, 0x00, 0xaa, 0xff}
	win10   = color.RGBA{0x00, 0x78, 0xd7, 0xff}
)

// screen returns a w × h screen of one colour.
func screen(w, h int, bg color.Color) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(bg), image.Point{}, draw.Src)
	return img
}

// text draws lines of fake text, as a VGA text mode would: 8 × 16
// character cells, glyphs 7 × 11 pixels from the cell's second row,
// every fifth cell a space; the first line at text row top.
func text(img *image.RGBA, top, lines, cols int, fg color.Color) *image.RGBA {
	for l := top; l < top+lines; l++ {
		for c := range cols {
			if (c+l)%5 == 4 {
				continue
			}
			r := image.Rect(c*8, l*16+2, c*8+7, l*16+13)
			draw.Draw(img, r, image.NewUniform(fg), image.Point{}, draw.Src)
		}
	}
	return img
}

func TestJudgeSynthetic(t *testing.T) {
	cursor := screen(720, 400, black)
	draw.Draw(cursor, image.Rect(0, 14, 8, 16), image.NewUniform(grey), image.Point{}, draw.Src)
	gradient := image.NewRGBA(image.Rect(0, 0, 320, 200))
	for y := range 200 {
		for x := range 320 {
			gradient.SetRGBA(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 0xff})
		}
	}
	// A blue desktop: the stop-screen blue covers less than half.
	desktop := text(screen(1024, 768, win10), 0, 48, 128, white)
	draw.Draw(desktop, image.Rect(0, 0, 1024, 420), image.NewUniform(color.RGBA{0x20, 0x30, 0x40, 0xff}), image.Point{}, draw.Src)
	// Windows 10: the blue, a large ":(" and a few lines.
	win10Stop := text(screen(1024, 768, win10), 20, 6, 60, white)
	draw.Draw(win10Stop, image.Rect(100, 100, 180, 240), image.NewUniform(white), image.Point{}, draw.Src)

	cases := []struct {
		name  string
		img   image.Image
		rule  bootcheck.Rule
		lines int
	}{
		{"black", screen(720, 400, black), bootcheck.RuleBlank, 0},
		{"black-with-cursor", cursor, bootcheck.RuleBlank, 1},
		{"white", screen(1024, 768, white), bootcheck.RuleBlank, 0},
		{"grey-noise", noisy(screen(800, 600, grey), 6), bootcheck.RuleBlank, 0},
		{"classic-stop-screen", text(screen(720, 400, vgaBlue), 0, 25, 80, grey), bootcheck.RuleBlueScreen, 25},
		{"windows-10-stop-screen", win10Stop, bootcheck.RuleBlueScreen, 0},
		{"no-bootable-device", text(screen(720, 400, black), 0, 6, 30, grey), bootcheck.RuleBootLoaderText, 6},
		{"grub-rescue-1024x768", text(screen(1024, 768, black), 0, 2, 40, grey), bootcheck.RuleBootLoaderText, 2},
		{"full-text", text(screen(720, 400, black), 0, 25, 80, grey), bootcheck.RuleScreen, 25},
		{"dark-blue-full-text", text(screen(720, 400, color.RGBA{0, 0, 0x40, 0xff}), 0, 25, 80, grey), bootcheck.RuleScreen, 25},
		{"light-page-little-text", text(screen(1024, 768, white), 2, 3, 50, black), bootcheck.RuleScreen, 3},
		{"picture", gradient, bootcheck.RuleScreen, 1},
		{"blue-desktop", desktop, bootcheck.RuleScreen, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := bootcheck.Judge(c.img, bootcheck.Rules{})
			t.Log(v)
			assert.Equal(t, c.rule, v.Rule)
			assert.Equal(t, c.rule == bootcheck.RuleScreen, v.Passed())
			assert.Equal(t, map[bool]bootcheck.Outcome{true: bootcheck.Passed, false: bootcheck.Failed}[v.Passed()], v.Outcome)
			assert.Equal(t, c.img.Bounds().Dx(), v.Measures.Width)
			assert.Equal(t, c.img.Bounds().Dy(), v.Measures.Height)
			if c.lines > 0 {
				assert.Equal(t, c.lines, v.Measures.TextLines)
			}
			assert.NotEmpty(t, v.Reason)
		})
	}
}

// noisy changes each pixel by up to ±amount, as a lossy encoding would.
func noisy(img *image.RGBA, amount int) *image.RGBA {
	for i := range img.Pix {
		if i%4 != 3 {
			d := (i*7919)%(2*amount+1) - amount
			img.Pix[i] = uint8(max(0, min(255, int(img.Pix[i])+d)))
		}
	}
	return img
}

func TestJudgeMeasures(t *testing.T) {
	img := text(screen(720, 400, black), 0, 5, 80, grey)
	v := bootcheck.Judge(img, bootcheck.Rules{})
	m := v.Measures
	assert.Equal(t, "#000000", m.Background)
	assert.Equal(t, 0, m.BackgroundLuma)
	assert.False(t, m.BlueScreen)
	// 5 lines of 11 pixel rows in 400; 64 of every 80 cells drawn.
	assert.InDelta(t, 55.0/400, m.TextRows, 1e-9)
	assert.InDelta(t, 1-float64(5*64*7*11)/(720*400), m.BackgroundCoverage, 1e-9)
	assert.Equal(t, 5, m.TextLines)

	stop := bootcheck.Judge(text(screen(720, 400, vgaBlue), 0, 3, 80, grey), bootcheck.Rules{}).Measures
	assert.Equal(t, "#0000aa", stop.Background)
	assert.True(t, stop.BlueScreen)
	assert.Equal(t, 19, stop.BackgroundLuma)
}

func TestJudgeSettings(t *testing.T) {
	stop := text(screen(720, 400, vgaBlue), 0, 25, 80, grey)
	little := text(screen(720, 400, black), 0, 6, 30, grey)
	blank := screen(720, 400, black)
	cases := []struct {
		name  string
		img   image.Image
		rules bootcheck.Rules
		rule  bootcheck.Rule
	}{
		// A rule turned off lets the next one judge.
		{"blue-off", stop, bootcheck.Rules{BlueCoverage: -1}, bootcheck.RuleScreen},
		{"blue-colours-elsewhere", stop, bootcheck.Rules{BlueScreenColors: []color.RGBA{{0xff, 0, 0, 0xff}}}, bootcheck.RuleScreen},
		{"blue-needs-more", stop, bootcheck.Rules{BlueCoverage: 0.95}, bootcheck.RuleScreen},
		{"text-off", little, bootcheck.Rules{MinTextRows: -1}, bootcheck.RuleScreen},
		{"text-lower", little, bootcheck.Rules{MinTextRows: 0.1}, bootcheck.RuleScreen},
		{"text-on-black-only", little, bootcheck.Rules{DarkLuma: -1}, bootcheck.RuleScreen},
		{"blank-off", blank, bootcheck.Rules{BlankRows: -1}, bootcheck.RuleBootLoaderText},
		{"blank-and-text-off", blank, bootcheck.Rules{BlankRows: -1, MinTextRows: -1}, bootcheck.RuleScreen},
		{"blank-wider", little, bootcheck.Rules{BlankRows: 0.5}, bootcheck.RuleBlank},
		// With a tolerance as wide as the text's brightness, the screen
		// is one colour — and that colour as near the VGA blue.
		{"tolerance", little, bootcheck.Rules{Tolerance: 0xaa}, bootcheck.RuleBlueScreen},
		{"tolerance-no-blue", little, bootcheck.Rules{Tolerance: 0xaa, BlueCoverage: -1}, bootcheck.RuleBlank},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := bootcheck.Judge(c.img, c.rules)
			assert.Equal(t, c.rule, v.Rule, "%v", v)
		})
	}
}

// TestJudgeImageTypes: an image of any type, and one whose bounds do not
// start at 0, is judged by its pixels.
func TestJudgeImageTypes(t *testing.T) {
	rgba := text(screen(720, 400, black), 0, 6, 30, grey)
	want := bootcheck.Judge(rgba, bootcheck.Rules{})
	require.Equal(t, bootcheck.RuleBootLoaderText, want.Rule)

	nrgba := image.NewNRGBA(rgba.Bounds())
	draw.Draw(nrgba, nrgba.Bounds(), rgba, image.Point{}, draw.Src)
	gray := image.NewGray(rgba.Bounds())
	draw.Draw(gray, gray.Bounds(), rgba, image.Point{}, draw.Src)
	paletted := image.NewPaletted(rgba.Bounds(), color.Palette{black, grey})
	draw.Draw(paletted, paletted.Bounds(), rgba, image.Point{}, draw.Src)
	for name, img := range map[string]image.Image{"nrgba": nrgba, "gray": gray, "paletted": paletted} {
		assert.Equal(t, want.Measures, bootcheck.Judge(img, bootcheck.Rules{}).Measures, name)
	}

	// A full text screen inside a larger white one: only the part counts.
	big := screen(1000, 700, white)
	draw.Draw(big, image.Rect(100, 100, 820, 500), text(screen(720, 400, black), 0, 25, 80, grey), image.Point{}, draw.Src)
	part := bootcheck.Judge(big.SubImage(image.Rect(100, 100, 820, 500)), bootcheck.Rules{})
	assert.Equal(t, bootcheck.RuleScreen, part.Rule)
	assert.Equal(t, 25, part.Measures.TextLines)

	empty := bootcheck.Judge(image.NewRGBA(image.Rectangle{}), bootcheck.Rules{})
	assert.Equal(t, bootcheck.Failed, empty.Outcome)
}

// TestJudgeRealScreens: screenshots QEMU took of real boots (TestLocal
// with -artifacts, and by hand: see testdata/screens/README).
func TestJudgeRealScreens(t *testing.T) {
	for name, rule := range map[string]bootcheck.Rule{
		"linux-console.png":      bootcheck.RuleScreen,
		"damaged-partition.png":  bootcheck.RuleBootLoaderText,
		"no-bootable-device.png": bootcheck.RuleBootLoaderText,
		"syslinux-loading.png":   bootcheck.RuleBootLoaderText,
		"qemu-no-display.png":    bootcheck.RuleBootLoaderText,
	} {
		img := decodeFile(t, filepath.Join("testdata", "screens", name))
		v := bootcheck.Judge(img, bootcheck.Rules{})
		t.Logf("%s: %v", name, v)
		assert.Equal(t, rule, v.Rule, name)
	}
}

// BenchmarkJudge: the cost of judging one screenshot, a text console and
// a full-HD screen.
func BenchmarkJudge(b *testing.B) {
	for _, img := range []*image.RGBA{
		text(screen(720, 400, black), 0, 25, 80, grey),
		text(screen(1920, 1080, win10), 0, 60, 200, white),
	} {
		b.Run(fmt.Sprintf("%dx%d", img.Rect.Dx(), img.Rect.Dy()), func(b *testing.B) {
			b.SetBytes(int64(len(img.Pix)))
			for b.Loop() {
				bootcheck.Judge(img, bootcheck.Rules{})
			}
		})
	}
}
