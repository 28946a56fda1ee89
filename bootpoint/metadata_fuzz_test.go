package bootpoint

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseMetadata feeds snapshot descriptions, which come from the
// hypervisor: ParseMetadata never panics, and what it accepts encodes
// and parses back to itself.
func FuzzParseMetadata(f *testing.F) {
	f.Add(Metadata{SetID: "set", PointID: "pt", Sequence: 7, PointTime: time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC), PatchDigest: "d", Library: "standbykit"}.Description())
	f.Add(`{"kind":"standbykit-bootpoint","sequence":-1}`)
	f.Add("taken by hand")
	f.Fuzz(func(t *testing.T, description string) {
		m, err := ParseMetadata(description)
		if err != nil {
			return
		}
		if m.Sequence < 0 || m.Sequence > maxSequence {
			t.Fatalf("sequence %d accepted", m.Sequence)
		}
		again, err := ParseMetadata(m.Description())
		if err != nil {
			t.Fatalf("re-encoded description refused: %v", err)
		}
		if !again.PointTime.Equal(m.PointTime) {
			t.Fatalf("point time %v became %v", m.PointTime, again.PointTime)
		}
		again.PointTime = m.PointTime
		if again != m {
			t.Fatalf("%+v became %+v", m, again)
		}
	})
}

func TestParseMetadataBounds(t *testing.T) {
	for _, d := range []string{
		`{"kind":"standbykit-bootpoint","sequence":-1}`,
		`{"kind":"standbykit-bootpoint","sequence":2147483648}`,
		`{"kind":"standbykit-bootpoint","sequence":1,"setId":"` + strings.Repeat("x", maxDescription) + `"}`,
	} {
		if _, err := ParseMetadata(d); err == nil {
			t.Errorf("%.80s… accepted", d)
		}
	}
}
