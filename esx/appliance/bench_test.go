package appliance_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/standbykit/standbykit/esx/appliance"
)

// benchChanges is 64 MiB of changes in 64 KiB extents spread over a
// 128 MiB disk, with content that does not compress.
const benchChanges = 64 << 20

func benchTarget(src, base io.ReaderAt) appliance.Target {
	tg := appliance.Target{Capacity: 2 * benchChanges, Source: src, Base: base}
	for off := int64(0); off < 2*benchChanges; off += 128 << 10 {
		tg.Extents = append(tg.Extents, ext{Off: off + 64<<10, Len: 64 << 10})
	}
	return tg
}

func noise(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func BenchmarkWritePayload(b *testing.B) {
	content := bytes.NewReader(noise(2 * benchChanges))
	tg := benchTarget(content, content)
	b.SetBytes(benchChanges)
	for b.Loop() {
		if _, _, err := appliance.WritePayload(context.Background(), io.Discard, []appliance.Target{tg}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply applies two payloads in turn (zero → noise, noise →
// zero), each 64 MiB of changes, to one in-memory disk: guard, CRC check,
// write, sync, read back.
func BenchmarkApply(b *testing.B) {
	content := bytes.NewReader(noise(2 * benchChanges))
	zero := bytes.NewReader(make([]byte, 2*benchChanges))
	var payloads [2][]byte
	for i, tg := range []appliance.Target{benchTarget(content, zero), benchTarget(zero, content)} {
		var buf bytes.Buffer
		if _, _, err := appliance.WritePayload(context.Background(), &buf, []appliance.Target{tg}); err != nil {
			b.Fatal(err)
		}
		payloads[i] = buf.Bytes()
	}
	d := appliance.NewMemDisk(2*benchChanges, nil)
	ds := []appliance.Disk{d}
	b.SetBytes(benchChanges)
	i := 0
	for b.Loop() {
		p := payloads[i%2]
		if _, err := appliance.Apply(context.Background(), bytes.NewReader(p), int64(len(p)), ds, io.Discard); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
