package appliance_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx/appliance"
)

// reports returns the report of a successful Apply and of one whose guard
// failed, with the payload's ID.
func reports(t testing.TB) (good, failed, id string) {
	payload, id, fresh := smallPayload(t)
	var ok, bad bytes.Buffer
	_, err := run(payload, disks(fresh()...), &ok)
	require.NoError(t, err)
	_, err = run(payload, disks(appliance.NewPatternDisk(32*kib, 9), appliance.NewPatternDisk(64*kib, 1)), &bad)
	require.ErrorIs(t, err, appliance.ErrGuard)
	return ok.String(), bad.String(), id
}

const bootNoise = "SeaBIOS (version 1.16)\r\nBooting from Hard Disk...\n[    0.000000] Linux version 6.6.0 {weird} \x00\x1b[0m\n\n"

func TestReadReportGood(t *testing.T) {
	good, _, id := reports(t)
	read := func(s string) error { return appliance.ReadReport(strings.NewReader(s), id) }
	require.NoError(t, read(good))
	assert.NoError(t, read(bootNoise+good), "noise before")
	assert.NoError(t, read(strings.ReplaceAll(good, "\n", "\r\n")), "a tty's line ends")
	assert.NoError(t, read("login: "+strings.TrimPrefix(good, "\n")), "noise without a line end before the start line")
	assert.NoError(t, read(strings.Repeat("x", 20000)+"\n"+good), "a long noise line")
	assert.NoError(t, read(good+"[   12.3] reboot: Power down\n{garbage"), "the kernel after done")
	assert.NoError(t, read(strings.TrimSuffix(good, "\n")), "no line end after done")

	// Another payload's report before this one (a reused serial file).
	other, _, otherID := reports(t)
	require.NotEqual(t, id, otherID)
	assert.NoError(t, read(other+good))
	assert.NoError(t, appliance.ReadReport(iotest.OneByteReader(strings.NewReader(good)), id))
}

func TestReadReportCut(t *testing.T) {
	good, _, id := reports(t)
	end := strings.LastIndexByte(good, '}') + 1
	for n := range len(good) + 1 {
		err := appliance.ReadReport(strings.NewReader(good[:n]), id)
		if n < end {
			require.ErrorIs(t, err, appliance.ErrReport, "cut at %d", n)
		} else {
			require.NoError(t, err, "cut at %d", n)
		}
	}
}

func TestReadReportFailures(t *testing.T) {
	good, failed, id := reports(t)
	other, _, otherID := reports(t)
	lines := strings.Split(strings.TrimPrefix(good, "\n"), "\n")
	start, guard, done := lines[0], lines[1], lines[len(lines)-2]
	withoutLine := func(i int) string {
		return strings.Join(append(append([]string(nil), lines[:i]...), lines[i+1:]...), "\n")
	}
	inject := func(s string) string { return start + "\n" + s + "\n" + strings.Join(lines[1:], "\n") }
	for _, c := range []struct {
		name, report string
		is           error
		contains     string
	}{
		{"guard failed", failed, appliance.ErrGuard, "does not match"},
		{"empty", "", nil, "no report"},
		{"garbage only", bootNoise + "{\"event\":\n{}\n", nil, "no report"},
		{"foreign payload", other, nil, otherID},
		{"error before any payload", bootNoise + `{"event":"error","ok":false,"error":"appliance: corrupt payload: not a payload (bad magic)"}` + "\n", appliance.ErrCorrupt, "bad magic"},
		{"init program's error", start + "\n" + `{"event":"error","ok":false,"error":"standbykit-writer: no payload disk"}` + "\n", nil, "standbykit-writer: no payload disk"},
		{"noise after start", inject("[ 3.1] sd 2:0:0:0: [sdb] Attached SCSI disk"), nil, "malformed line"},
		{"unknown field", inject(strings.Replace(guard, `"ok"`, `"extra":1,"ok"`, 1)), nil, "malformed line"},
		{"data after the object", inject(guard + " {}"), nil, "malformed line"},
		{"null", inject("null"), nil, "malformed line"},
		{"long line", inject(strings.Repeat(" ", 9000) + guard), nil, "longer than"},
		{"second start", inject(start), nil, "second start"},
		{"second guard", inject(guard), nil, "second guard"},
		{"other payload inside", inject(strings.ReplaceAll(guard, id, otherID)), nil, "a line of payload"},
		{"unknown event", inject(strings.Replace(guard, `"guard"`, `"grind"`, 1)), nil, "unknown event"},
		{"no verify", withoutLine(len(lines) - 3), nil, "every target"},
		{"no write", withoutLine(4), nil, "before its write line"},
		{"counts disagree", strings.Replace(good, done, strings.Replace(done, `"records":3`, `"records":4`, 1), 1), nil, "disagree"},
		{"done not ok", strings.Replace(good, done, strings.Replace(done, `"ok":true`, `"ok":false,"error":"boom"`, 1), 1), nil, "boom"},
		{"negative unit", strings.Replace(good, guard, strings.Replace(guard, `"unit":1,`, `"unit":-1,`, 1), 1), nil, "malformed guard line"},
		{"unit without a disk", strings.Replace(good, guard, strings.Replace(guard, `"disk":1,`, ``, 1), 1), nil, "malformed guard line"},
		{"failed step then done", strings.Replace(good, guard, strings.Replace(guard, `"ok":true`, `"ok":false,"error":"x"`, 1), 1), nil, "after a failed step"},
		{"done before start", strings.Replace(good, start, done, 1), nil, "before the start line"},
		{"too many lines", strings.Repeat("noise\n", 10001) + good, nil, "lines"},
		{"too long", strings.Repeat(strings.Repeat("n", 1000)+"\n", 1100) + good, nil, "bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := appliance.ReadReport(strings.NewReader(c.report), id)
			require.ErrorIs(t, err, appliance.ErrReport)
			if c.is != nil {
				assert.ErrorIs(t, err, c.is)
			}
			assert.ErrorContains(t, err, c.contains)
			assert.ErrorContains(t, err, id)
		})
	}

	err := appliance.ReadReport(iotest.ErrReader(errors.New("datastore gone")), id)
	assert.ErrorIs(t, err, appliance.ErrReport)
	assert.ErrorContains(t, err, "datastore gone")
	assert.ErrorIs(t, appliance.ReadReport(strings.NewReader(good), ""), appliance.ErrReport)
	assert.ErrorIs(t, appliance.ReadReport(nil, id), appliance.ErrReport)
	assert.ErrorIs(t, appliance.ReadReport(io.MultiReader(strings.NewReader(good[:len(good)/2]), iotest.ErrReader(io.ErrUnexpectedEOF)), id), appliance.ErrReport)
}

// TestReadReportLinesFit checks that Apply's longest lines (a long error)
// stay readable.
func TestReadReportLinesFit(t *testing.T) {
	msg := strings.Repeat("\x01", 5000)
	payload, id, fresh := smallPayload(t)
	ds := fresh()
	ds[0].WriteErr = errors.New(msg)
	var report bytes.Buffer
	_, err := run(payload, disks(ds...), &report)
	require.Error(t, err)
	for _, l := range strings.Split(report.String(), "\n") {
		assert.Less(t, len(l), 8<<10)
	}
	err = appliance.ReadReport(bytes.NewReader(report.Bytes()), id)
	assert.ErrorContains(t, err, "writing disk 0")
	assert.NotErrorIs(t, err, appliance.ErrCorrupt)
}
