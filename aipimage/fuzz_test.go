package aipimage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tinyImage is a small valid image file: one disk of three 4 KiB blocks
// and a 512-byte last one: a zero block, two of text (LZ4), and random
// bytes (stored raw). The fuzzer mutates and minimizes whole inputs, so
// seeds stay small; fuzz inputs carry it compacted (compactImage).
func tinyImage(tb testing.TB, opts *WriterOptions) []byte {
	tb.Helper()
	disk := make([]byte, 3*4096+512)
	copy(disk[4096:], bytes.Repeat([]byte("standby "), 1024))
	copy(disk[8192:], bytes.Repeat([]byte("boot point 2 "), 100))
	r := rand.New(rand.NewPCG(15, 15))
	for i := 3 * 4096; i < len(disk); i++ {
		disk[i] = byte(r.Uint32())
	}
	if opts == nil {
		opts = &WriterOptions{}
	}
	opts.BlockSize = 4096
	opts.Time = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	opts.SetID = "5b4b1d2f0c9e4a7d8e6f3a2b1c0d9e8f"
	path := filepath.Join(tb.TempDir(), "t"+FileExt)
	if _, err := WriteFull(context.Background(), path, Machine{Hostname: "fuzz"},
		[]DiskSource{{Info: DiskInfo{Size: int64(len(disk)), SectorSize: 512}, Content: bytes.NewReader(disk)}}, opts); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// TestWriteSeedCorpus regenerates the seeds in testdata/fuzz from tinyImage
// when STANDBYKIT_WRITE_SEEDS=1; otherwise it does nothing. Inputs that
// fuzzing found (named by their hash) are left alone.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("STANDBYKIT_WRITE_SEEDS") != "1" {
		t.Skip("set STANDBYKIT_WRITE_SEEDS=1 to regenerate testdata/fuzz")
	}
	plain := tinyImage(t, nil)
	enc := tinyImage(t, &WriterOptions{Passphrase: []byte("fuzz"), ScryptN: 16})
	f, err := NewFile(bytes.NewReader(plain), int64(len(plain)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := f.pages[0][0]
	e, _, _ := f.lookup(0, ref.first+1)
	page := plain[ref.offset : ref.offset+int64(pageHeaderLen+ref.count*indexEntryLen)]
	q := func(b []byte) string { return fmt.Sprintf("[]byte(%q)\n", b) }
	seeds := map[string][]string{
		"FuzzOpenAndRead": {q(compactImage(plain)), q(compactImage(enc)), q(compactImage(plain)[:len(compactImage(plain))/2])},
		"FuzzHeader":      {q(plain[:headerPrefixLen+le.Uint32(plain[12:])])},
		"FuzzIndexPage":   {q(page) + fmt.Sprintf("uint8(%d)\nint64(%d)\nint64(%d)\n", ref.count, ref.first, ref.last)},
		"FuzzBlock":       {q(plain[e.offset:e.offset+blockHeaderLen+int64(e.length)]) + fmt.Sprintf("uint16(%d)\nuint32(%d)\n", e.flags, e.length)},
		"FuzzTrailer":     {q(plain[len(plain)-trailerLen:]) + fmt.Sprintf("int64(%d)\n", len(plain))},
	}
	for name, inputs := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, in := range inputs {
			content := "go test fuzz v1\n" + in
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzOpenAndRead feeds whole files (compacted): opening, reading what
// each disk holds and verifying must return typed errors, never panic,
// hang or allocate without bound; each input is read as it is and with its
// checksums recomputed.
func FuzzOpenAndRead(f *testing.F) {
	f.Add(compactImage(tinyImage(f, nil)))
	f.Fuzz(func(t *testing.T, in []byte) {
		data := expandImage(in)
		checkOpenAndRead(t, data)
		fixed := bytes.Clone(data)
		fixChecksums(fixed)
		checkOpenAndRead(t, fixed)
	})
}

// FuzzHeader decodes header prefixes and metadata, as they are and with
// their CRCs recomputed; a header that decodes must survive a round trip.
func FuzzHeader(f *testing.F) {
	img := tinyImage(f, nil)
	f.Add(img[:headerPrefixLen+le.Uint32(img[12:])])
	f.Fuzz(func(t *testing.T, data []byte) {
		checkHeader(t, data)
		if len(data) >= headerPrefixLen {
			fixed := bytes.Clone(data)
			fixChecksums(fixed)
			checkHeader(t, fixed)
		}
	})
}

func checkHeader(t *testing.T, data []byte) {
	h, err := decodeHeaderPrefix(data)
	if err != nil {
		if !typedOpenError(err) {
			t.Fatalf("untyped error: %v", err)
		}
		return
	}
	if int(h.metaLen) > len(data)-headerPrefixLen {
		return
	}
	info, err := decodeMeta(h, data[headerPrefixLen:headerPrefixLen+int(h.metaLen)])
	if err != nil {
		if !typedOpenError(err) {
			t.Fatalf("untyped error: %v", err)
		}
		return
	}
	again, err := encodeHeader(info)
	if err != nil {
		t.Fatalf("decoded header does not encode: %v", err)
	}
	h2, err := decodeHeaderPrefix(again)
	if err != nil {
		t.Fatalf("re-encoded header does not decode: %v", err)
	}
	if _, err := decodeMeta(h2, again[headerPrefixLen:headerPrefixLen+int(h2.metaLen)]); err != nil {
		t.Fatalf("re-encoded metadata does not decode: %v", err)
	}
}

func fuzzInfo() *PointInfo {
	return &PointInfo{BlockSize: 4096, Disks: []DiskInfo{{Size: 20<<10 + 512, SectorSize: 512}}}
}

// FuzzIndexPage decodes index pages, as they are and with their CRC
// recomputed: every entry accepted must lie in the page's block range and
// (unless zero) in the data area.
func FuzzIndexPage(f *testing.F) {
	f.Add([]byte(pageMagic), uint8(1), int64(0), int64(5))
	f.Fuzz(func(t *testing.T, data []byte, count uint8, first, last int64) {
		ref := pageRef{count: int(count), first: first, last: last, offset: 4096}
		check := func(data []byte) {
			entries, err := decodePage(data, ref, fuzzInfo(), 4096, 1<<20)
			if err != nil {
				if !typedOpenError(err) {
					t.Fatalf("untyped error: %v", err)
				}
				return
			}
			for _, e := range entries {
				if e.block < first || e.block > last || (e.flags&flagZero == 0 && (e.offset < 4096 || e.offset+blockHeaderLen+int64(e.length) > 1<<20)) {
					t.Fatalf("accepted entry out of bounds: %+v", e)
				}
			}
		}
		check(data)
		if len(data) >= pageHeaderLen {
			fixed := bytes.Clone(data)
			le.PutUint32(fixed[12:], crc(fixed[pageHeaderLen:]))
			check(fixed)
		}
	})
}

// FuzzBlock checks block headers and decodes payloads, with the header's
// CRC as it is and recomputed; decoding must not trust the header either.
func FuzzBlock(f *testing.F) {
	f.Add(make([]byte, blockHeaderLen), uint16(flagLZ4), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, flags uint16, length uint32) {
		if len(data) < blockHeaderLen {
			return
		}
		payload := data[blockHeaderLen:]
		e := indexEntry{block: int64(le.Uint64(data[8:])), flags: flags, length: uint32(len(payload)), crc: crc(payload)}
		dst := make([]byte, 4096)
		decode := func(hdr []byte) {
			if checkBlockHeader(hdr, 0, e) == nil {
				if err := decodeBlock(dst, payload, e, 0, nil, nil); err != nil && !typedOpenError(err) {
					t.Fatalf("untyped error: %v", err)
				}
			}
		}
		decode(data[:blockHeaderLen])
		fixed := bytes.Clone(data[:blockHeaderLen])
		le.PutUint32(fixed[28:], crc(fixed[:28]))
		decode(fixed)
		if err := decodeBlock(dst, payload, e, 0, nil, nil); err != nil && !typedOpenError(err) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

// FuzzTrailer decodes trailers, as they are and with their CRC
// recomputed: an accepted trailer puts the directory inside the file,
// right before the trailer.
func FuzzTrailer(f *testing.F) {
	f.Add(make([]byte, trailerLen), int64(1<<20))
	f.Fuzz(func(t *testing.T, data []byte, size int64) {
		if len(data) < 16 {
			return
		}
		check := func(data []byte) {
			t2, err := decodeTrailer(data, size, headerPrefix{metaLen: 100, crc: le.Uint32(data[12:])})
			if err != nil {
				if !typedOpenError(err) {
					t.Fatalf("untyped error: %v", err)
				}
				return
			}
			if t2.dirOffset+t2.dirLen != size-trailerLen || t2.dirLen < 0 || t2.dirOffset < dataStart(100) {
				t.Fatalf("accepted trailer with directory outside the file: %+v", t2)
			}
		}
		check(data)
		if len(data) == trailerLen {
			fixed := bytes.Clone(data)
			le.PutUint32(fixed[88:], crc(fixed[:88]))
			check(fixed)
		}
	})
}
