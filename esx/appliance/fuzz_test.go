package appliance_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/esx/appliance"
	"github.com/standbykit/standbykit/internal/fuzzimage"
)

// FuzzApply's inputs are packed payloads (internal/fuzzimage: the length
// and the runs of non-zero bytes), since a payload is mostly the zero
// padding of its sectors. Each is applied as it is, where a mutation
// almost always meets a CRC, and with its CRCs recomputed (fixCRCs), where
// it reaches the checks behind them: target table, record order, counts,
// ranges, lengths.

// maxFuzzPayload bounds the payload an input unpacks to: the seeds are
// 6 KiB, and every execution allocates and copies up to this much.
const maxFuzzPayload = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fixCRCs recomputes in place, as FORMAT.md lays them out, the CRCs of a
// payload: each record's data CRC and header CRC (walking the records by
// their lengths), the header's, and the trailer's copy of it, its CRC over
// the record headers and its own CRC. The guards, CRCs of the disks'
// content, are left alone.
func fixCRCs(p []byte) {
	le := binary.LittleEndian
	sum := func(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
	if len(p) < 2*512 {
		return
	}
	n := int(le.Uint16(p[12:]))
	hdrLen := (64 + 32*n + 4 + 511) / 512 * 512
	if n == 0 || hdrLen > len(p)-512 {
		return
	}
	headerCRC := sum(p[:hdrLen-4])
	le.PutUint32(p[hdrLen-4:], headerCRC)
	trailer := p[len(p)-512:]
	var records uint32
	for pos := hdrLen; pos+512 <= len(p)-512; {
		rec := p[pos : pos+512]
		length := int(le.Uint32(rec[8:]))
		if length > len(p)-512-(pos+512) {
			break
		}
		le.PutUint32(rec[12:], sum(p[pos+512:pos+512+length]))
		le.PutUint32(rec[508:], sum(rec[:508]))
		records = crc32.Update(records, castagnoli, rec)
		if length == 0 {
			break
		}
		pos += 512 + length
	}
	le.PutUint32(trailer[12:], headerCRC)
	le.PutUint32(trailer[48:], records)
	le.PutUint32(trailer[508:], sum(trailer[:508]))
}

// fuzzPayload is a payload for fuzzDisks: two targets of a few KiB at
// SCSI units 1 and 2, three records, so that an execution is cheap.
func fuzzPayload(t testing.TB) []byte {
	t0 := target(4*kib, 1, 2, ext{Off: 0, Len: 512}, ext{Off: 1 * kib, Len: 1 * kib})
	t0.Unit = 1
	t1 := target(2*kib, 3, 4, ext{Off: 2*kib - 512, Len: 512})
	t1.Unit = 2
	payload, _ := build(t, t0, t1)
	return payload
}

func fuzzDisks() (*appliance.MemDisk, *appliance.MemDisk) {
	return appliance.NewPatternDisk(2*kib, 3).AtUnit(2), appliance.NewPatternDisk(4*kib, 1).AtUnit(1)
}

// FuzzApply applies hostile payloads to two small disks: Apply must never
// panic, never write when it fails for another reason than ErrVerify, and
// its report must tell what it returned.
func FuzzApply(f *testing.F) {
	payload := fuzzPayload(f)
	f.Add(fuzzimage.Pack(payload))
	f.Add(fuzzimage.Pack(payload[:len(payload)/2]))
	one, _ := build(f, target(4*kib, 1, 5, ext{Off: 0, Len: 4 * kib}))
	f.Add(fuzzimage.Pack(one)) // a target of unknown unit
	wrongUnit, _ := build(f, at(target(4*kib, 1, 5, ext{Off: 0, Len: 4 * kib}), 2))
	f.Add(fuzzimage.Pack(wrongUnit))
	f.Fuzz(func(t *testing.T, in []byte) {
		data := fuzzimage.Unpack(in, maxFuzzPayload)
		checkApply(t, data)
		fixed := bytes.Clone(data)
		fixCRCs(fixed)
		checkApply(t, fixed)
	})
}

func checkApply(t *testing.T, data []byte) {
	d0, d1 := fuzzDisks()
	var report bytes.Buffer
	res, err := appliance.Apply(context.Background(), bytes.NewReader(data), int64(len(data)), disks(d0, d1), &report)
	if err != nil && !errors.Is(err, appliance.ErrVerify) && d0.Writes()+d1.Writes() != 0 {
		t.Fatalf("wrote %d+%d times, then failed: %v", d0.Writes(), d1.Writes(), err)
	}
	if err != nil && !errors.Is(err, appliance.ErrCorrupt) && !errors.Is(err, appliance.ErrGuard) && !errors.Is(err, appliance.ErrVerify) {
		t.Fatalf("untyped error: %v", err)
	}
	if err == nil && (res.Records == 0 || len(res.Targets) == 0) {
		t.Fatalf("succeeded without writing: %+v", res)
	}
	rerr := appliance.ReadReport(bytes.NewReader(report.Bytes()), res.PayloadID)
	if (err == nil) != (rerr == nil) {
		t.Fatalf("Apply: %v; its report: %v", err, rerr)
	}
}

// FuzzReadReport reads hostile reports: never a panic, ErrReport for
// anything but a success, and a success only for a report naming the ID.
func FuzzReadReport(f *testing.F) {
	good, failed, id := reports(f)
	f.Add(good, id)
	f.Add(failed, id)
	f.Add(bootNoise+good, id)
	f.Add(good[:len(good)/2], id)
	f.Add(good, "0123")
	f.Add("", id)
	f.Fuzz(func(t *testing.T, report, id string) {
		err := appliance.ReadReport(strings.NewReader(report), id)
		if err != nil && !errors.Is(err, appliance.ErrReport) {
			t.Fatalf("not an ErrReport: %v", err)
		}
		if err == nil && (!strings.Contains(report, `"done"`) || !strings.Contains(report, `"start"`)) {
			t.Fatalf("accepted a report without start and done")
		}
	})
}

// TestFixCRCs: fixCRCs, written from FORMAT.md, leaves a payload of
// WritePayload as it is, and makes one whose data changed apply.
func TestFixCRCs(t *testing.T) {
	p := fuzzPayload(t)
	fixed := bytes.Clone(p)
	fixCRCs(fixed)
	if !bytes.Equal(p, fixed) {
		t.Fatal("fixCRCs changed a valid payload")
	}
	// The first record's data: after the one-sector header and the
	// record's header sector. It goes to offset 0 of the target at unit 1.
	p[2*512] ^= 0xff
	fixCRCs(p)
	d0, d1 := fuzzDisks()
	if _, err := appliance.Apply(context.Background(), bytes.NewReader(p), int64(len(p)), disks(d0, d1), nil); err != nil {
		t.Fatalf("a payload with fixed CRCs: %v", err)
	}
	got := make([]byte, 1)
	if _, err := d1.ReadAt(got, 0); err != nil || got[0] != appliance.PatternByte(2, 0)^0xff {
		t.Fatalf("byte 0 of the target is %#x (%v), want the changed one", got[0], err)
	}
}
