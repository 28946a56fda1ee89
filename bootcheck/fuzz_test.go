package bootcheck_test

import (
	"bytes"
	"image"
	"testing"

	"github.com/standbykit/standbykit/bootcheck"
)

// FuzzDecode feeds Decode untrusted screenshots (seeds in
// testdata/fuzz/FuzzDecode: PPM files with comments and two-byte
// samples, PNG files, broken headers); whatever it returns must stay
// within the bounds, re-encode as PPM to the same pixels, and be
// judged without a panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("P6 2 2 255\n\x00\x00\x00\xff\xff\xff\x00\x00\xaa\x55\xff\x55"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := bootcheck.Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		b := img.Bounds()
		if b.Dx() <= 0 || b.Dy() <= 0 || b.Dx() > bootcheck.MaxWidth || b.Dy() > bootcheck.MaxHeight || b.Dx()*b.Dy() > bootcheck.MaxPixels {
			t.Fatalf("decoded a %v image", b)
		}
		v := bootcheck.Judge(img, bootcheck.Rules{})
		if v.Measures.Width != b.Dx() || v.Measures.Height != b.Dy() || v.Outcome == "" || v.Rule == "" {
			t.Fatalf("verdict %+v for a %v image", v, b)
		}
		rgba, ok := img.(*image.RGBA)
		if !ok {
			return
		}
		again, err := bootcheck.DecodePPM(bytes.NewReader(ppm("P6 "+itoa(b.Dx())+" "+itoa(b.Dy())+" 255\n", rgba)))
		if err != nil || !bytes.Equal(again.Pix, rgba.Pix) {
			t.Fatalf("re-encoded PPM: %v", err)
		}
	})
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}
