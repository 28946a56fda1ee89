package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/fuzzimage"
	"github.com/standbykit/standbykit/internal/heapprobe"
)

// claimSize returns a newc archive of one entry whose header claims size
// bytes of data but whose stream ends right after the name.
func claimSize(e tentry, size uint32) []byte {
	a := newc("070701", e)
	copy(a[6+6*8:], fmt.Sprintf("%08X", size))
	end := 110 + len(e.name) + 1
	return a[:(end+3)&^3]
}

// TestClaimsBounded feeds images whose headers claim enormous sizes and
// counts: each is refused without allocating or decompressing what it
// claims.
func TestClaimsBounded(t *testing.T) {
	builtin := "lib/modules/6.8.0/modules.builtin"
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestSpeed)
	zw.Write(newc("070701", file("a", "1"))[:110]) // a header, then zeros
	zeros := make([]byte, 1<<20)
	for range 64 {
		zw.Write(zeros)
	}
	require.NoError(t, zw.Close())
	nameSize := newc("070701", file("a", "1"))
	copy(nameSize[6+11*8:], "FFFFFFFF")

	cases := map[string]struct {
		img  []byte
		want string // ReadFile's name, "" for Read
	}{
		"file size":      {claimSize(file("etc/fstab", "x"), 0xffffffff), ""},
		"builtin list":   {claimSize(file(builtin, "x"), maxBuiltinFile), ""},
		"wanted file":    {claimSize(file("etc/fstab", "x"), MaxReadFile), "etc/fstab"},
		"symlink target": {claimSize(symlink("bin/sh", "x"), maxPath), ""},
		"name size":      {nameSize, ""},
		"gzip bomb":      {bomb.Bytes(), ""},
	}
	for name, c := range cases {
		var err error
		alloc := heapprobe.Allocated(func() {
			if c.want != "" {
				_, err = ReadFile(bytes.NewReader(c.img), 1<<20, c.want)
			} else {
				_, err = Read(bytes.NewReader(c.img), 1<<20)
			}
		})
		require.Error(t, err, name)
		require.True(t, typed(err), "%s: %v", name, err)
		require.Less(t, alloc, uint64(1<<20), "%s: %v", name, err)
	}

	// The builtin-list claim, which allocated 8 MiB up front, is a seed.
	path := filepath.Join("testdata", "fuzz", "FuzzRead", "regress-builtin-claim")
	if os.Getenv("STANDBYKIT_WRITE_SEEDS") == "1" {
		require.NoError(t, fuzzimage.WriteCorpusFile(path, cases["builtin list"].img))
	}
	seed, err := fuzzimage.ReadCorpusFile(path)
	require.NoError(t, err)
	require.Equal(t, cases["builtin list"].img, seed, "%s is stale: run STANDBYKIT_WRITE_SEEDS=1 go test -run TestClaimsBounded ./p2v/initramfs", path)
}
