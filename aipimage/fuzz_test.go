package aipimage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// tinyImage is a small valid image file: one 20 KiB disk of 4 KiB blocks,
// one zero, two of text, one incompressible, and a short last block. The
// fuzzer minimizes interesting inputs byte by byte, so seeds stay small.
func tinyImage(tb testing.TB, opts *WriterOptions) []byte {
	tb.Helper()
	disk := make([]byte, 20<<10+512)
	copy(disk[4096:], bytes.Repeat([]byte("standby "), 1024))
	for i := 12 << 10; i < 16<<10; i++ {
		disk[i] = byte(i * 7919 >> 3)
	}
	if opts == nil {
		opts = &WriterOptions{}
	}
	opts.BlockSize = 4096
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

// TestWriteSeedCorpus regenerates testdata/fuzz from tinyImage when
// STANDBYKIT_WRITE_SEEDS=1; otherwise it does nothing.
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
	e, _, _ := f.lookup(0, ref.first)
	page := plain[ref.offset : ref.offset+int64(pageHeaderLen+ref.count*indexEntryLen)]
	q := func(b []byte) string { return fmt.Sprintf("[]byte(%q)\n", b) }
	seeds := map[string][]string{
		"FuzzOpenAndRead": {q(plain), q(enc), q(plain[:len(plain)/2])},
		"FuzzHeader":      {q(plain[:dataStart(f.dataBeginMetaLen())])},
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

func (f *File) dataBeginMetaLen() uint32 { return uint32(f.dataBegin - headerPrefixLen) }

// FuzzOpenAndRead feeds whole files: opening, reading every disk and
// verifying must return errors, never panic or allocate without bound.
func FuzzOpenAndRead(f *testing.F) {
	f.Add(tinyImage(f, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pw := range [][]byte{nil, []byte("fuzz")} {
			_, _ = readAll(data, &OpenOptions{Passphrase: pw})
		}
	})
}

func FuzzHeader(f *testing.F) {
	img := tinyImage(f, nil)
	f.Add(img[:4096])
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHeaderPrefix(data)
		if err != nil {
			return
		}
		if int(h.metaLen) <= len(data)-headerPrefixLen {
			info, err := decodeMeta(h, data[headerPrefixLen:headerPrefixLen+int(h.metaLen)])
			if err == nil {
				// A header that decodes must survive a round trip.
				again, err := encodeHeader(info)
				if err != nil {
					t.Fatalf("decoded header does not encode: %v", err)
				}
				if _, err := decodeHeaderPrefix(again); err != nil {
					t.Fatalf("re-encoded header does not decode: %v", err)
				}
			}
		}
	})
}

func fuzzInfo() *PointInfo {
	return &PointInfo{BlockSize: 4096, Disks: []DiskInfo{{Size: 20<<10 + 512, SectorSize: 512}}}
}

func FuzzIndexPage(f *testing.F) {
	f.Add([]byte(pageMagic), uint8(1), int64(0), int64(5))
	f.Fuzz(func(t *testing.T, data []byte, count uint8, first, last int64) {
		ref := pageRef{count: int(count), first: first, last: last, offset: 4096}
		entries, err := decodePage(data, ref, fuzzInfo(), 4096, 1<<20)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.block < first || e.block > last || (e.flags&flagZero == 0 && e.offset+int64(e.length) > 1<<20) {
				t.Fatalf("accepted entry out of bounds: %+v", e)
			}
		}
	})
}

func FuzzBlock(f *testing.F) {
	f.Add(make([]byte, blockHeaderLen), uint16(flagLZ4), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, flags uint16, length uint32) {
		if len(data) < blockHeaderLen {
			return
		}
		hdr := data[:blockHeaderLen]
		payload := data[blockHeaderLen:]
		e := indexEntry{block: int64(le.Uint64(hdr[8:])), flags: flags, length: uint32(len(payload)), crc: crc(payload)}
		dst := make([]byte, 4096)
		if checkBlockHeader(hdr, 0, e) == nil {
			_ = decodeBlock(dst, payload, e, 0, nil, nil)
		}
		// Decoding must not trust the header either.
		_ = decodeBlock(dst, payload, e, 0, nil, nil)
	})
}

func FuzzTrailer(f *testing.F) {
	f.Add(make([]byte, trailerLen), int64(1<<20))
	f.Fuzz(func(t *testing.T, data []byte, size int64) {
		if len(data) < 16 {
			return
		}
		t2, err := decodeTrailer(data, size, headerPrefix{metaLen: 100, crc: le.Uint32(data[12:])})
		if err == nil && (t2.dirOffset+t2.dirLen != size-trailerLen || t2.dirLen < 0) {
			t.Fatalf("accepted trailer with directory outside the file: %+v", t2)
		}
	})
}
