package bootcheck_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootcheck"
)

// ppm encodes img as a P6 file with maxval 255 after header.
func ppm(header string, img *image.RGBA) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for i := 0; i < len(img.Pix); i += 4 {
		b.Write(img.Pix[i : i+3])
	}
	return b.Bytes()
}

func TestDecodePPM(t *testing.T) {
	img := text(screen(40, 20, color.RGBA{1, 2, 3, 0xff}), 0, 1, 4, color.RGBA{200, 100, 50, 0xff})
	for _, header := range []string{
		"P6\n40 20\n255\n",
		"P6 40 20 255 ",
		"P6\t40\r\n20\f255\v",
		"P6\n# made by hand\n40 # width\n#\n20 255\n",
		"P6#c\n40\n20\n255\n",
	} {
		got, err := bootcheck.DecodePPM(bytes.NewReader(ppm(header, img)))
		require.NoError(t, err, "%q", header)
		assert.Equal(t, img, got, "%q", header)
	}
	// Decode tells a PPM from a PNG.
	got, err := bootcheck.Decode(bytes.NewReader(ppm("P6 40 20 255\n", img)))
	require.NoError(t, err)
	assert.Equal(t, img, got)
	// Bytes after the pixels are not read.
	got, err = bootcheck.DecodePPM(bytes.NewReader(append(ppm("P6 40 20 255\n", img), "P6 1 1 255\nxyz"...)))
	require.NoError(t, err)
	assert.Equal(t, img, got)
}

// TestDecodePPMScales: samples of other largest values are scaled to
// 0–255, two bytes big-endian above 255.
func TestDecodePPMScales(t *testing.T) {
	wide := []byte("P6 2 1 65535\n\xff\xff\x80\x80\x00\x00" + "\x00\x01\x01\x00\x7f\xff")
	img, err := bootcheck.DecodePPM(bytes.NewReader(wide))
	require.NoError(t, err)
	assert.Equal(t, []uint8{255, 128, 0, 255, 0, 1, 127, 255}, img.Pix)

	narrow := []byte("P6 2 1 15\n\x0f\x08\x00\x01\x10\xff")
	img, err = bootcheck.DecodePPM(bytes.NewReader(narrow))
	require.NoError(t, err)
	// 8/15 → 136, 1/15 → 17; samples above the largest value count as
	// the largest.
	assert.Equal(t, []uint8{255, 136, 0, 255, 17, 255, 255, 255}, img.Pix)

	small := []byte("P6 1 1 300\n\x01\x2c\x00\x96\x00\x00")
	img, err = bootcheck.DecodePPM(bytes.NewReader(small))
	require.NoError(t, err)
	assert.Equal(t, []uint8{255, 128, 0, 255}, img.Pix)
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{"", bootcheck.ErrUnsupported},
		{"GIF89a", bootcheck.ErrUnsupported},
		{"P5 1 1 255\n\x00", bootcheck.ErrUnsupported},
		{"P3 1 1 255\n0 0 0", bootcheck.ErrUnsupported},
		{"P6", bootcheck.ErrCorrupt},
		{"P6 1 1", bootcheck.ErrCorrupt},
		{"P6 1 1 255", bootcheck.ErrCorrupt},
		{"P6 1 1 255\n", bootcheck.ErrCorrupt},
		{"P6 1 1 255\n\x00\x00", bootcheck.ErrCorrupt},
		{"P6 1 1 255x\x00\x00\x00", bootcheck.ErrCorrupt},
		{"P6 0 1 255\n", bootcheck.ErrCorrupt},
		{"P6 1 0 255\n", bootcheck.ErrCorrupt},
		{"P6 1 1 0\n\x00\x00\x00", bootcheck.ErrCorrupt},
		{"P6 1 1 65536\n\x00\x00\x00", bootcheck.ErrCorrupt},
		{"P6 -1 1 255\n", bootcheck.ErrCorrupt},
		{"P6 1x 1 255\n", bootcheck.ErrCorrupt},
		{"P6 123456789 1 255\n", bootcheck.ErrCorrupt},
		{"P6 1 1 99999999999999999999\n", bootcheck.ErrCorrupt},
		{"P6 16385 1 255\n", bootcheck.ErrTooLarge},
		{"P6 1 16385 255\n", bootcheck.ErrTooLarge},
		{"P6 8192 8192 255\n", bootcheck.ErrTooLarge},
		{"P6 4096 8192 255\n\x00", bootcheck.ErrCorrupt},
		{"\x89PNG\r\n\x1a\n", bootcheck.ErrCorrupt},
	} {
		_, err := bootcheck.Decode(strings.NewReader(c.in))
		assert.ErrorIs(t, err, c.want, "%q", c.in)
	}
}

// TestDecodePPMMemory: a header that promises more pixels than the input
// holds costs no more memory than the input.
func TestDecodePPMMemory(t *testing.T) {
	in := []byte("P6 4096 8192 255\n" + strings.Repeat("\x00", 4096))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := bootcheck.DecodePPM(bytes.NewReader(in))
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, bootcheck.ErrCorrupt)
	// 4096 × 8192 pixels would take 100 MiB of samples and 128 MiB of RGBA.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
}

func TestDecodePNG(t *testing.T) {
	img := text(screen(64, 32, black), 0, 2, 8, grey)
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	got, err := bootcheck.Decode(bytes.NewReader(b.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, bootcheck.Judge(img, bootcheck.Rules{}).Measures, bootcheck.Judge(got, bootcheck.Rules{}).Measures)

	// A PNG whose header claims 20000 × 20000 pixels is refused before
	// its pixels are read.
	big := withPNGSize(t, b.Bytes(), 20000, 20000)
	_, err = bootcheck.Decode(bytes.NewReader(big))
	assert.ErrorIs(t, err, bootcheck.ErrTooLarge)
	// One within the bounds whose data is short is corrupt.
	short := withPNGSize(t, b.Bytes(), 4096, 4096)
	_, err = bootcheck.Decode(bytes.NewReader(short))
	assert.ErrorIs(t, err, bootcheck.ErrCorrupt)
}

// withPNGSize rewrites a PNG's IHDR chunk to claim w × h pixels.
func withPNGSize(t *testing.T, in []byte, w, h uint32) []byte {
	t.Helper()
	out := bytes.Clone(in)
	// Signature (8), IHDR length (4), "IHDR" (4), width, height, … CRC.
	require.Equal(t, "IHDR", string(out[12:16]))
	binary.BigEndian.PutUint32(out[16:], w)
	binary.BigEndian.PutUint32(out[20:], h)
	binary.BigEndian.PutUint32(out[29:], crc32.ChecksumIEEE(out[12:29]))
	return out
}
