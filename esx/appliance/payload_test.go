package appliance_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx/appliance"
)

func TestWritePayloadRejectsTargets(t *testing.T) {
	ok := target(mib, 1, 2, ext{Off: 0, Len: 512})
	many := make([]appliance.Target, 65)
	for i := range many {
		many[i] = ok
	}
	for name, tgs := range map[string][]appliance.Target{
		"no targets":          nil,
		"65 targets":          many,
		"no extents":          {target(mib, 1, 2)},
		"capacity unaligned":  {target(mib+1, 1, 2, ext{Off: 0, Len: 512})},
		"capacity zero":       {target(0, 1, 2, ext{Off: 0, Len: 512})},
		"capacity too large":  {target(1<<57, 1, 2, ext{Off: 0, Len: 512})},
		"offset unaligned":    {target(mib, 1, 2, ext{Off: 100, Len: 512})},
		"length unaligned":    {target(mib, 1, 2, ext{Off: 0, Len: 100})},
		"empty extent":        {target(mib, 1, 2, ext{Off: 0, Len: 0})},
		"negative offset":     {target(mib, 1, 2, ext{Off: -512, Len: 1024})},
		"past the end":        {target(mib, 1, 2, ext{Off: mib - 512, Len: 1024})},
		"huge length":         {target(mib, 1, 2, ext{Off: 512, Len: 1<<63 - 511})},
		"overlapping":         {target(mib, 1, 2, ext{Off: 0, Len: 1024}, ext{Off: 512, Len: 512})},
		"unsorted":            {target(mib, 1, 2, ext{Off: 4096, Len: 512}, ext{Off: 0, Len: 512})},
		"no source":           {{Capacity: mib, Extents: []ext{{Off: 0, Len: 512}}, Base: appliance.Pattern{}}},
		"no base":             {{Capacity: mib, Extents: []ext{{Off: 0, Len: 512}}, Source: appliance.Pattern{}}},
		"second target wrong": {ok, target(mib, 1, 2)},
		"unit 7":              {at(ok, 7)},
		"unit 16":             {at(ok, 16)},
		"unit -1":             {at(ok, -1)},
		"two targets at 2":    {at(ok, 2), at(ok, 3), at(ok, 2)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := appliance.PayloadSize(tgs)
			require.Error(t, err)
			var buf bytes.Buffer
			_, n, err := appliance.WritePayload(context.Background(), &buf, tgs)
			require.Error(t, err)
			assert.Zero(t, n)
			assert.Zero(t, buf.Len())
		})
	}
	// Adjacent extents are fine, and so are several targets of unknown
	// unit.
	_, err := appliance.PayloadSize([]appliance.Target{target(mib, 1, 2, ext{Off: 0, Len: 512}, ext{Off: 512, Len: 512})})
	assert.NoError(t, err)
	_, err = appliance.PayloadSize([]appliance.Target{at(ok, 0), at(ok, 15), at(ok, 0), at(ok, 8), at(ok, 1)})
	assert.NoError(t, err)
}

// limitWriter fails once it has taken n bytes.
type limitWriter struct{ n int }

func (w *limitWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("datastore full")
	}
	w.n -= len(p)
	return len(p), nil
}

type errReaderAt struct{ err error }

func (e errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, e.err }

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestWritePayloadErrors(t *testing.T) {
	tg := target(64*mib, 1, 2, ext{Off: 0, Len: 9 * mib}, ext{Off: 32 * mib, Len: 512})
	size, err := appliance.PayloadSize([]appliance.Target{tg})
	require.NoError(t, err)
	for _, n := range []int{0, 100, 512, 1024, 5 * int(mib), int(size) - 1} {
		_, written, err := appliance.WritePayload(context.Background(), &limitWriter{n: n}, []appliance.Target{tg})
		require.ErrorContains(t, err, "datastore full")
		assert.Equal(t, int64(n), written)
	}
	_, _, err = appliance.WritePayload(context.Background(), shortWriter{}, []appliance.Target{tg})
	assert.ErrorIs(t, err, io.ErrShortWrite)

	broken := tg
	broken.Source = errReaderAt{errors.New("image unreadable")}
	_, _, err = appliance.WritePayload(context.Background(), io.Discard, []appliance.Target{broken})
	assert.ErrorContains(t, err, "image unreadable")
	broken = tg
	broken.Base = bytes.NewReader(make([]byte, mib)) // shorter than the extents
	_, _, err = appliance.WritePayload(context.Background(), io.Discard, []appliance.Target{broken})
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, n, err := appliance.WritePayload(ctx, io.Discard, []appliance.Target{tg})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, n)
}

// cancelAfter cancels a context once it has read a number of bytes.
type cancelAfter struct {
	appliance.Pattern
	left   int
	cancel func()
}

func (c *cancelAfter) ReadAt(b []byte, off int64) (int, error) {
	c.left -= len(b)
	if c.left <= 0 {
		c.cancel()
	}
	return c.Pattern.ReadAt(b, off)
}

func TestWritePayloadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tg := target(64*mib, 1, 2, ext{Off: 0, Len: 12 * mib})
	tg.Source = &cancelAfter{Pattern: appliance.Pattern{Seed: 2}, left: 1, cancel: cancel}
	var buf bytes.Buffer
	_, n, err := appliance.WritePayload(ctx, &buf, []appliance.Target{tg})
	require.ErrorIs(t, err, context.Canceled)
	// The first record went out, then WritePayload stopped.
	assert.Equal(t, int64(512+512+4*mib), n)
}

func TestPayloadsDiffer(t *testing.T) {
	tg := target(mib, 1, 2, ext{Off: 0, Len: 512})
	a, ida := build(t, tg)
	b, idb := build(t, tg)
	assert.NotEqual(t, ida, idb)
	assert.NotEqual(t, a, b)
	// Records of one payload cannot be spliced into another.
	mixed := append(append(append([]byte(nil), a[:512]...), b[512:len(b)-512]...), a[len(a)-512:]...)
	_, err := appliance.Apply(context.Background(), bytes.NewReader(mixed), int64(len(mixed)), disks(appliance.NewPatternDisk(mib, 1)), nil)
	assert.ErrorIs(t, err, appliance.ErrCorrupt)
}
