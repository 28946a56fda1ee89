package p2v

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOverlayMatchesAppliedCopy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for range 200 {
		src := make([]byte, 1+r.IntN(20000))
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		plan := &Plan{}
		want := bytes.Clone(src)
		for off := int64(r.IntN(300)); off < int64(len(src)); off += int64(1 + r.IntN(3000)) {
			n := min(1+r.IntN(200), len(src)-int(off))
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			plan.Patches = append(plan.Patches, Patch{Offset: off, Data: data})
			copy(want[off:], data)
			off += int64(n)
		}
		r.Shuffle(len(plan.Patches), func(i, j int) { plan.Patches[i], plan.Patches[j] = plan.Patches[j], plan.Patches[i] })
		o, err := NewOverlay(bytes.NewReader(src), plan, 0)
		require.NoError(t, err)
		for range 20 {
			off := r.IntN(len(src))
			buf := make([]byte, r.IntN(len(src)-off)+1)
			n, _ := o.ReadAt(buf, int64(off))
			require.Equal(t, want[off:off+n], buf[:n])
		}
		require.Equal(t, src, bytes.Clone(src), "source untouched")
	}
}

func TestOverlappingPatchesRejected(t *testing.T) {
	plan := &Plan{Patches: []Patch{{Offset: 10, Data: []byte("abcd")}, {Offset: 12, Data: []byte("x")}}}
	_, err := NewOverlay(bytes.NewReader(nil), plan, 0)
	require.ErrorIs(t, err, ErrOverlap)
	// Other disks' patches do not count.
	plan.Patches[1].Disk = 1
	_, err = NewOverlay(bytes.NewReader(nil), plan, 0)
	require.NoError(t, err)
}

func TestDigest(t *testing.T) {
	a := &Plan{Patches: []Patch{{Offset: 1, Data: []byte("a")}, {Offset: 5, Data: []byte("b")}}}
	b := &Plan{Patches: []Patch{{Offset: 5, Data: []byte("b")}, {Offset: 1, Data: []byte("a")}}}
	c := &Plan{Patches: []Patch{{Offset: 1, Data: []byte("a")}, {Offset: 6, Data: []byte("b")}}}
	require.Equal(t, a.Digest(), b.Digest())
	require.NotEqual(t, a.Digest(), c.Digest())
	require.Len(t, (&Plan{}).Digest(), 64)
}

// TestPlanJSON pins the JSON form documented on Plan.
func TestPlanJSON(t *testing.T) {
	plan := &Plan{Firmware: FirmwareEFI, GuestID: "windows2019srv_64Guest", Controller: ControllerPVSCSI,
		Patches:  []Patch{{Disk: 1, Offset: 4096, Data: []byte{0, 1, 2}, Why: "because"}},
		Warnings: []string{"careful"}}
	b, err := json.Marshal(plan)
	require.NoError(t, err)
	require.JSONEq(t, `{"firmware": "efi", "guestId": "windows2019srv_64Guest", "controller": "pvscsi",
		"patches": [{"disk": 1, "offset": 4096, "data": "AAEC", "why": "because"}], "warnings": ["careful"]}`, string(b))
	var back Plan
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, *plan, back)

	b, err = json.Marshal(Plan{Firmware: FirmwareBIOS})
	require.NoError(t, err)
	require.JSONEq(t, `{"firmware": "bios", "guestId": "", "controller": "", "patches": [], "warnings": []}`, string(b))
}
