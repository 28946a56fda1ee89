package bootcheck

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// TestScreendumpPPMMatchesPNG checks DecodePPM against QEMU's own PNG
// encoding of the same screen: a machine without disks, whose SeaBIOS
// stops with "No bootable device." in VGA text mode (720 × 400) — which
// must also fail the rules, by the boot-loader text rule.
func TestScreendumpPPMMatchesPNG(t *testing.T) {
	if testing.Short() {
		t.Skip("runs QEMU: not with -short")
	}
	qemu := oracle.Require(t, "qemu-system-x86_64")
	t.Parallel()
	work, err := os.MkdirTemp("", "sbk-bootcheck-test-")
	require.NoError(t, err)
	defer os.RemoveAll(work)
	sock := filepath.Join(work, "qmp.sock")
	cmd := exec.Command(qemu, "-machine", "pc", "-accel", "tcg", "-m", "64", "-nodefaults", "-vga", "std",
		"-display", "none", "-qmp", "unix:"+sock+",server=on,wait=off")
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mon, err := dialQMP(ctx, sock, exited)
	require.NoError(t, err, "%s", out.Bytes())
	defer mon.Close()

	dump := func(name, format string) string {
		path := filepath.Join(work, name)
		_, err := mon.run(ctx, "screendump", map[string]string{"filename": path, "format": format})
		if err != nil && format == "png" && strings.Contains(err.Error(), "format") {
			t.Skipf("this QEMU writes no PNG screendumps: %v", err)
		}
		require.NoError(t, err)
		return path
	}
	// Until the screen holds still: a PPM, the PNG, and a PPM equal to
	// the first.
	for try := 0; ; try++ {
		require.Less(t, try, 60, "the screen never held still")
		first := readPPM(t, dump("a.ppm", "ppm"))
		fromPNG := dump("b.png", "png")
		second := readPPM(t, dump("c.ppm", "ppm"))
		// QEMU's own notice, until the firmware sets a mode, is 640 × 480.
		if first.Rect != image.Rect(0, 0, 720, 400) || !bytes.Equal(first.Pix, second.Pix) {
			time.Sleep(time.Second)
			continue
		}
		f, err := os.Open(fromPNG)
		require.NoError(t, err)
		want, err := png.Decode(f)
		f.Close()
		require.NoError(t, err)
		require.Equal(t, want.Bounds(), first.Bounds())
		for y := range first.Bounds().Dy() {
			for x := range first.Bounds().Dx() {
				r, g, b, _ := want.At(x, y).RGBA()
				got := first.RGBAAt(x, y)
				if uint8(r>>8) != got.R || uint8(g>>8) != got.G || uint8(b>>8) != got.B {
					t.Fatalf("pixel (%d, %d): PPM %v, PNG %v", x, y, got, want.At(x, y))
				}
			}
		}
		v := Judge(first, Rules{})
		t.Logf("%d × %d screen: %v", first.Bounds().Dx(), first.Bounds().Dy(), v)
		assert.Equal(t, RuleBootLoaderText, v.Rule)
		return
	}
}

func readPPM(t *testing.T, path string) *image.RGBA {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := DecodePPM(f)
	require.NoError(t, err)
	return img
}
