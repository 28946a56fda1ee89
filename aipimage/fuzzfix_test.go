package aipimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/standbykit/standbykit/internal/fuzzimage"
)

// Fuzz inputs of FuzzOpenAndRead are image files in a compact form, and the
// target reads each twice: as it is, where a mutation almost always meets
// a checksum, and with every checksum recomputed, where it reaches the
// checks behind them (offsets, counts, orders, KDF parameters).

// compactImage drops the zero padding between the metadata and the first
// block, so that an input does not carry (and the fuzzer does not mutate
// and minimize) up to 4 KiB of zeros.
func compactImage(file []byte) []byte {
	metaLen := le.Uint32(file[12:])
	metaEnd := headerPrefixLen + int(metaLen)
	return append(bytes.Clone(file[:metaEnd]), file[dataStart(metaLen):]...)
}

// expandImage puts the padding back that compactImage dropped; an input
// whose metadata length points past its end is returned as it is.
func expandImage(in []byte) []byte {
	if len(in) < headerPrefixLen {
		return in
	}
	metaLen := le.Uint32(in[12:])
	metaEnd := int64(headerPrefixLen) + int64(metaLen)
	if metaLen > maxMetaLength || metaEnd > int64(len(in)) {
		return in
	}
	out := make([]byte, 0, int64(len(in))+dataStart(metaLen)-metaEnd)
	out = append(out, in[:metaEnd]...)
	out = append(out, make([]byte, dataStart(metaLen)-metaEnd)...)
	return append(out, in[metaEnd:]...)
}

// fixChecksums recomputes in place every checksum of an image file that
// can be found from its structure: the metadata and header CRCs, the
// payload and header CRCs of each record an index entry points at (in the
// entry too), each index page's and the directory's CRC, the header CRC
// copy, the digest and the CRC of the trailer. Whatever lies outside the
// file is left alone.
func fixChecksums(b []byte) {
	if len(b) < headerPrefixLen {
		return
	}
	if metaLen := int(le.Uint32(b[12:])); metaLen <= len(b)-headerPrefixLen {
		le.PutUint32(b[16:], crc(b[headerPrefixLen:headerPrefixLen+metaLen]))
	}
	le.PutUint32(b[20:], crc(b[:20]))
	if len(b) < headerPrefixLen+trailerLen {
		return
	}
	end := int64(len(b) - trailerLen)
	t := b[end:]
	inside := func(off, n int64) bool { return off >= 0 && n >= 0 && off <= end && n <= end-off }
	dirOff, dirLen := int64(le.Uint64(t[16:])), int64(le.Uint32(t[24:]))*dirEntryLen
	if inside(dirOff, dirLen) {
		dir := b[dirOff : dirOff+dirLen]
		for i := int64(0); i < dirLen; i += dirEntryLen {
			count, pageOff := int64(le.Uint32(dir[i+4:])), int64(le.Uint64(dir[i+24:]))
			if count > entriesPerPage || !inside(pageOff, pageHeaderLen+count*indexEntryLen) {
				continue
			}
			page := b[pageOff : pageOff+pageHeaderLen+count*indexEntryLen]
			for j := range count {
				e := page[pageHeaderLen+j*indexEntryLen:]
				off, n := int64(le.Uint64(e[8:])), int64(le.Uint32(e[16:]))
				if le.Uint16(e[20:])&flagZero != 0 || !inside(off, blockHeaderLen+n) {
					continue
				}
				rec := b[off : off+blockHeaderLen+n]
				c := crc(rec[blockHeaderLen:])
				le.PutUint32(e[24:], c)
				le.PutUint32(rec[20:], c)
				le.PutUint32(rec[28:], crc(rec[:28]))
			}
			le.PutUint32(page[12:], crc(page[pageHeaderLen:]))
		}
		le.PutUint32(t[28:], crc(dir))
	}
	le.PutUint32(t[12:], le.Uint32(b[20:]))
	sum := sha256.Sum256(b[:end])
	copy(t[48:80], sum[:])
	le.PutUint32(t[88:], crc(t[:88]))
}

// typedOpenError reports whether err is one of the errors NewFile and a
// point's readers promise.
func typedOpenError(err error) bool {
	for _, want := range []error{ErrIncomplete, ErrCorrupt, ErrNotImage, ErrUnsupported, ErrPassphraseRequired, ErrWrongPassphrase} {
		if errors.Is(err, want) {
			return true
		}
	}
	return false
}

// fuzzPassphrases returns the passphrases to open data with: none, and the
// seeds' when the file's scrypt cost is small. The cost the format allows
// (up to 256 MiB and a few seconds) is tested on its own
// (TestHostileKDFParameters); a fuzzer paying it would run a few
// executions a second.
func fuzzPassphrases(data []byte) [][]byte {
	pws := [][]byte{nil}
	if h, err := decodeHeaderPrefix(data); err == nil && int64(len(data)) >= headerPrefixLen+int64(h.metaLen) {
		info, err := decodeMeta(h, data[headerPrefixLen:headerPrefixLen+h.metaLen])
		if err == nil && info.Encryption != nil && info.Encryption.N*info.Encryption.P <= 1<<10 {
			pws = append(pws, []byte("fuzz"))
		}
	}
	return pws
}

// readBudget bounds the bytes openAndRead reads per disk beyond the first
// and last block: a hostile file may describe a 1 PiB disk.
const readBudget = 256 << 10

// openAndRead opens data, reads what each disk's Changed ranges name (up
// to readBudget) and both ends of each disk, and verifies the file. It
// fails the test on a broken promise: an untyped error, ranges out of
// order or outside the disk, a short read without an error.
func openAndRead(t *testing.T, data []byte, pw []byte) error {
	f, err := NewFile(bytes.NewReader(data), int64(len(data)), &OpenOptions{Passphrase: pw, ReadWorkers: 1})
	if err != nil {
		return err
	}
	f.info.File = "mem"
	p := &ImagePoint{layers: []*File{f}, workers: 1}
	buf := make([]byte, 64<<10)
	for d, disk := range f.info.Disks {
		changed, err := f.Changed(d)
		if err != nil {
			return err
		}
		var end int64
		for _, e := range changed {
			if e.Len <= 0 || e.Off < end || e.End() > disk.Size {
				t.Fatalf("disk %d of %d bytes: Changed returned %v", d, disk.Size, changed)
			}
			end = e.End()
		}
		r, err := p.Disk(d)
		if err != nil {
			return err
		}
		offsets := fuzzimage.ReadOffsets(disk.Size-int64(f.info.BlockSize), changed, int64(len(buf)), readBudget)
		for _, off := range offsets {
			want := min(int64(len(buf)), disk.Size-off)
			n, err := r.ReadAt(buf[:want], off)
			if err != nil && err != io.EOF {
				return err
			}
			if int64(n) != want {
				t.Fatalf("disk %d: read %d of %d bytes at %d without an error", d, n, want, off)
			}
		}
	}
	return f.Verify(context.Background(), nil)
}

// checkOpenAndRead opens data with each passphrase; every error must be
// typed.
func checkOpenAndRead(t *testing.T, data []byte) {
	for _, pw := range fuzzPassphrases(data) {
		if err := openAndRead(t, data, pw); err != nil && !typedOpenError(err) {
			t.Fatalf("untyped error (passphrase %q): %v", pw, err)
		}
	}
}

// TestFuzzInputsCompact: the stall of FuzzOpenAndRead. Its inputs were
// whole files, 6 KiB of which 4 KiB was the padding before the first
// block; Go's minimizer, which runs on every input that finds new coverage
// and pauses fuzzing meanwhile, tries removing every byte range of an
// input (quadratic in its length), so each new input cost the whole
// -fuzzminimizetime (60 s by default) at 0 executions per second. Inputs
// are now compacted files of under 2 KiB, which expand back exactly.
func TestFuzzInputsCompact(t *testing.T) {
	for _, opts := range []*WriterOptions{nil, {Passphrase: []byte("fuzz"), ScryptN: 16}} {
		file := tinyImage(t, opts)
		in := compactImage(file)
		if len(in) > 2<<10 {
			t.Errorf("compact seed of %d bytes", len(in))
		}
		if !bytes.Equal(expandImage(in), file) {
			t.Errorf("expandImage(compactImage(file)) differs from the file")
		}
	}
	seeds, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzOpenAndRead", "seed*"))
	if err != nil || len(seeds) == 0 {
		t.Fatalf("no seeds: %v", err)
	}
	for _, s := range seeds {
		// Quoted in the corpus file: a byte takes up to 4 characters.
		if st, err := os.Stat(s); err != nil || st.Size() > 8<<10 {
			t.Errorf("%s: a large seed (%v)", s, err)
		}
	}
}
