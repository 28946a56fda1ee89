package esx

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
)

// startHost starts a simulator on a fresh temporary folder and connects.
func startHost(t *testing.T) (*Simulator, *Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sim, err := StartSimulator(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	h, err := Connect(ctx, sim.Config())
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return sim, h
}

// memFile is a bootpoint.File of fixed bytes; size -1 hides its size.
func memFile(name string, b []byte, size int64) bootpoint.File {
	return bootpoint.File{Name: name, Size: size, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

// fakeStreamVMDK is opaque bytes with a streamOptimized-like header:
// magic, capacity, and an embedded descriptor at sector 1.
func fakeStreamVMDK(seed uint64, capacity int64, name string) []byte {
	desc := "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n" +
		"RW " + strconv.FormatInt(capacity/512, 10) + " SPARSE \"" + name + "\"\n"
	b := make([]byte, 512*4)
	copy(b, "KDMV")
	binary.LittleEndian.PutUint32(b[4:], 3)
	binary.LittleEndian.PutUint64(b[12:], uint64(capacity/512))
	binary.LittleEndian.PutUint64(b[28:], 1) // descriptor offset
	binary.LittleEndian.PutUint64(b[36:], 2) // descriptor size
	copy(b[512:], desc)
	r := rand.New(rand.NewPCG(seed, seed))
	tail := make([]byte, 3000+int(seed)*17)
	for i := range tail {
		tail[i] = byte(r.Uint32())
	}
	return append(b, tail...)
}
