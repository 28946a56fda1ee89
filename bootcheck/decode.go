package bootcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
)

// Errors Decode returns, wrapped, for a screenshot it cannot take.
var (
	// ErrUnsupported: neither a PNG nor a binary PPM (P6) file.
	ErrUnsupported = errors.New("bootcheck: unsupported screenshot format")
	// ErrCorrupt: a PNG or PPM file that breaks its format or ends early.
	ErrCorrupt = errors.New("bootcheck: corrupt screenshot")
	// ErrTooLarge: a screenshot larger than MaxWidth × MaxHeight or
	// MaxPixels.
	ErrTooLarge = errors.New("bootcheck: screenshot too large")
)

// Bounds on a screenshot's size, checked before its pixels are read: a
// console is at most an 8K screen (7680 × 4320).
const (
	MaxWidth  = 16384
	MaxHeight = 16384
	MaxPixels = 1 << 25
)

// checkSize refuses dimensions beyond the bounds.
func checkSize(w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: %d × %d pixels", ErrCorrupt, w, h)
	}
	if w > MaxWidth || h > MaxHeight || w*h > MaxPixels {
		return fmt.Errorf("%w: %d × %d pixels (at most %d × %d, %d pixels)", ErrTooLarge, w, h, MaxWidth, MaxHeight, MaxPixels)
	}
	return nil
}

// Decode reads a screenshot: a PNG file (what ESXi's CreateScreenshot_Task
// writes and what Local keeps) or a binary PPM file (P6, what QEMU's
// screendump writes). Its size is checked before its pixels are read.
func Decode(r io.Reader) (image.Image, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(8)
	switch {
	case bytes.HasPrefix(magic, []byte("\x89PNG\r\n\x1a\n")):
		return decodePNG(br)
	case bytes.HasPrefix(magic, []byte("P6")):
		return DecodePPM(br)
	}
	return nil, fmt.Errorf("%w: the file starts with %q, neither PNG nor PPM (P6)", ErrUnsupported, magic)
}

// decodePNG decodes a PNG file once its header has shown a size within
// the bounds.
func decodePNG(r io.Reader) (image.Image, error) {
	var head bytes.Buffer
	cfg, err := png.DecodeConfig(io.TeeReader(r, &head))
	if err != nil {
		return nil, fmt.Errorf("%w: png: %w", ErrCorrupt, err)
	}
	if err := checkSize(cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	img, err := png.Decode(io.MultiReader(&head, r))
	if err != nil {
		return nil, fmt.Errorf("%w: png: %w", ErrCorrupt, err)
	}
	return img, nil
}

// DecodePPM reads a binary PPM (netpbm P6) image: the header "P6", the
// width, the height and the largest sample value (1 to 65535) as decimal
// numbers separated by white space and # comments, one white-space
// character, then the pixels, red, green and blue samples of one byte
// (two, big-endian, when the largest value is above 255). Pixels are
// read as they come, so a header that promises more than the input holds
// costs no more memory than the input.
func DecodePPM(r io.Reader) (*image.RGBA, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	var magic [2]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil || magic != [2]byte{'P', '6'} {
		return nil, fmt.Errorf("%w: not a binary PPM (P6) file", ErrUnsupported)
	}
	var fields [3]int
	for i := range fields {
		n, err := ppmNumber(br)
		if err != nil {
			return nil, err
		}
		fields[i] = n
	}
	w, h, maxval := fields[0], fields[1], fields[2]
	if maxval < 1 || maxval > 65535 {
		return nil, fmt.Errorf("%w: ppm: largest sample value %d (want 1 to 65535)", ErrCorrupt, maxval)
	}
	if err := checkSize(w, h); err != nil {
		return nil, err
	}
	// The one white-space byte after the largest value.
	if c, err := br.ReadByte(); err != nil || !ppmSpace(c) {
		return nil, fmt.Errorf("%w: ppm: no white space after the header", ErrCorrupt)
	}
	sample := 1
	if maxval > 255 {
		sample = 2
	}
	need := int64(w) * int64(h) * 3 * int64(sample)
	var data bytes.Buffer
	if n, err := io.Copy(&data, io.LimitReader(br, need)); err != nil {
		return nil, fmt.Errorf("%w: ppm: %w", ErrCorrupt, err)
	} else if n < need {
		return nil, fmt.Errorf("%w: ppm: %d bytes of pixels where %d × %d pixels need %d", ErrCorrupt, n, w, h, need)
	}
	pix := data.Bytes()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	scale := func(v int) uint8 { return uint8((v*255 + maxval/2) / maxval) }
	for i, o := 0, 0; o < len(img.Pix); o += 4 {
		for c := range 3 {
			v := int(pix[i])
			if sample == 2 {
				v = v<<8 | int(pix[i+1])
			}
			i += sample
			if maxval != 255 {
				v = int(scale(min(v, maxval)))
			}
			img.Pix[o+c] = uint8(v)
		}
		img.Pix[o+3] = 0xff
	}
	return img, nil
}

// ppmNumber reads one decimal header field after white space and
// comments; fields beyond 8 digits are refused rather than overflowed.
func ppmNumber(br *bufio.Reader) (int, error) {
	c, err := br.ReadByte()
	for err == nil && (ppmSpace(c) || c == '#') {
		if c == '#' {
			// A comment runs to the end of the line.
			for err == nil && c != '\n' && c != '\r' {
				c, err = br.ReadByte()
			}
			continue
		}
		c, err = br.ReadByte()
	}
	if err != nil {
		return 0, fmt.Errorf("%w: ppm: header ends early", ErrCorrupt)
	}
	n, digits := 0, 0
	for ; err == nil && c >= '0' && c <= '9'; c, err = br.ReadByte() {
		if digits++; digits > 8 {
			return 0, fmt.Errorf("%w: ppm: header number of more than 8 digits", ErrCorrupt)
		}
		n = n*10 + int(c-'0')
	}
	if digits == 0 {
		return 0, fmt.Errorf("%w: ppm: header holds %q where a number belongs", ErrCorrupt, c)
	}
	if err == nil {
		// The byte after the digits: white space, part of the header.
		if err := br.UnreadByte(); err != nil {
			return 0, fmt.Errorf("%w: ppm: %w", ErrCorrupt, err)
		}
	}
	return n, nil
}

func ppmSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
