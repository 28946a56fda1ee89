package appliance_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/esx/appliance"
)

// FuzzApply applies hostile payloads to two small disks: Apply must never
// panic, never write when it fails for another reason than ErrVerify, and
// its report must tell what it returned.
func FuzzApply(f *testing.F) {
	payload, _, _ := smallPayload(f)
	f.Add(payload)
	f.Add(payload[:len(payload)/2])
	one, _ := build(f, target(64*kib, 1, 5, ext{Off: 0, Len: 64 * kib}))
	f.Add(one) // a target of unknown unit
	wrongUnit, _ := build(f, at(target(64*kib, 1, 5, ext{Off: 0, Len: 64 * kib}), 2))
	f.Add(wrongUnit)
	f.Fuzz(func(t *testing.T, data []byte) {
		d0, d1 := appliance.NewPatternDisk(32*kib, 3).AtUnit(2), appliance.NewPatternDisk(64*kib, 1).AtUnit(1)
		var report bytes.Buffer
		res, err := appliance.Apply(context.Background(), bytes.NewReader(data), int64(len(data)), disks(d0, d1), &report)
		if err != nil && !errors.Is(err, appliance.ErrVerify) && d0.Writes()+d1.Writes() != 0 {
			t.Fatalf("wrote %d+%d times, then failed: %v", d0.Writes(), d1.Writes(), err)
		}
		if err == nil && (res.Records == 0 || len(res.Targets) == 0) {
			t.Fatalf("succeeded without writing: %+v", res)
		}
		rerr := appliance.ReadReport(bytes.NewReader(report.Bytes()), res.PayloadID)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("Apply: %v; its report: %v", err, rerr)
		}
	})
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
