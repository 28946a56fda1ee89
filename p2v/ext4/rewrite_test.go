package ext4

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allowedRanges returns the byte ranges a rewrite of path may touch: its
// data blocks (debugfs blocks) and its inode (debugfs imap).
func allowedRanges(t *testing.T, img, path string, v variant) [][2]int64 {
	t.Helper()
	bs := int64(v.blockSize)
	var out [][2]int64
	for _, b := range dataBlocks(t, img, path) {
		out = append(out, [2]int64{b * bs, (b + 1) * bs})
	}
	inodeSize := int64(256)
	if strings.Contains(strings.Join(v.args, " "), "-I 128") {
		inodeSize = 128
	}
	loc := inodeLoc(t, img, path, v.blockSize)
	return append(out, [2]int64{loc, loc + inodeSize})
}

func checkPatchesWithin(t *testing.T, patches []Patch, allowed [][2]int64) {
	t.Helper()
	for _, p := range patches {
		ok := false
		for _, a := range allowed {
			if p.Offset >= a[0] && p.End() <= a[1] || p.Offset >= a[0] && p.Offset < a[1] && contiguousAllowed(p, allowed) {
				ok = true
				break
			}
		}
		assert.True(t, ok, "patch [%d,%d) touches more than the file's blocks and inode %v", p.Offset, p.End(), allowed)
	}
}

// contiguousAllowed reports whether every block-sized piece of p lies in
// an allowed range (a patch may span physically contiguous data blocks).
func contiguousAllowed(p Patch, allowed [][2]int64) bool {
	for off := p.Offset; off < p.End(); {
		next := int64(-1)
		for _, a := range allowed {
			if off >= a[0] && off < a[1] {
				next = a[1]
			}
		}
		if next < 0 {
			return false
		}
		off = next
	}
	return true
}

// e2fsckClean runs e2fsck -fn and fails unless it finds nothing.
func e2fsckClean(t *testing.T, img string) {
	t.Helper()
	out, err := oracle.Output("e2fsck", "-fn", img)
	require.NoError(t, err, "e2fsck -fn after the rewrite:\n%s", out)
}

// TestRewriteFile rewrites /etc/fstab (shorter, longer, through a link)
// and /etc/multi in place, applies the patches to a copy of the image
// and checks the result with debugfs and e2fsck, and that nothing else
// changed.
func TestRewriteFile(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := image(t, v)
			fsys, _ := openImage(t, img)
			if v.inline {
				_, err := fsys.RewriteFile("/etc/fstab", []byte("x\n"))
				assert.ErrorIs(t, err, ErrUnsupported)
				return
			}
			bs := v.blockSize
			longer := fstab + "/dev/sdb1 /srv ext4 defaults 0 2\n"
			cases := []struct {
				path, via string
				content   []byte
			}{
				{"/etc/fstab", "/etc/fstab", []byte(strings.Replace(fstab, "/dev/mapper/vg0-swap", "/dev/sda3", 1))},
				{"/etc/fstab", "/etclink/abs", []byte(longer)},
				{"/etc/fstab", "/etc/fstab", bytes.Repeat([]byte("#"), bs)},             // fills the block
				{"/etc/multi", "/etc/multi", bytes.Repeat([]byte("m\n"), bs+bs/4)},      // shorter, same blocks
				{"/etc/multi", "/etc/multi", bytes.Repeat([]byte("m"), 2*bs)},           // ends at a block end: the last block zeroed
				{"/etc/multi", "/etc/multi", bytes.Repeat([]byte("M\n"), 3*bs/2)},       // fills all three blocks
				{"/etc/big-text", "/etc/big-text", bytes.Repeat([]byte("big\n"), 5*bs)}, // spans indirect blocks on ext2/3
				{"/empty", "/empty", nil},
			}
			for i, c := range cases {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					patches, err := fsys.RewriteFile(c.via, c.content)
					require.NoError(t, err)
					if c.path == "/empty" {
						assert.Empty(t, patches, "an empty file rewritten empty")
						return
					}
					checkPatchesWithin(t, patches, allowedRanges(t, img, c.path, v))

					cp := copyImage(t, img)
					applyPatches(t, cp, patches)
					assert.Equal(t, c.content, debugfs(t, cp, "cat "+c.path))
					e2fsckClean(t, cp)
					// This package reads back the new content (and
					// verifies the new inode checksum).
					again, _ := openImage(t, cp)
					got, err := again.ReadFile(c.path)
					require.NoError(t, err)
					assert.Equal(t, c.content, got)
					in, err := again.Lookup(c.path)
					require.NoError(t, err)
					assert.Equal(t, int64(len(c.content)), in.Size)
				})
			}

			// Everything else is byte-identical: compare dumps.
			patches, err := fsys.RewriteFile("/etc/fstab", []byte(longer))
			require.NoError(t, err)
			cp := copyImage(t, img)
			applyPatches(t, cp, patches)
			before, after := rdump(t, img), rdump(t, cp)
			changed := diffTrees(t, before, after)
			assert.Equal(t, []string{"/etc/fstab"}, changed)

			// Refusals.
			_, err = fsys.RewriteFile("/etc/fstab", make([]byte, bs+1))
			assert.ErrorIs(t, err, ErrNoRoom)
			_, err = fsys.RewriteFile("/etc/multi", make([]byte, 3*bs+1))
			assert.ErrorIs(t, err, ErrNoRoom)
			// Shrinking /etc/multi below its last block would leave an
			// initialized block past the end of the file.
			_, err = fsys.RewriteFile("/etc/multi", []byte("short\n"))
			assert.ErrorIs(t, err, ErrUnsupported)
			// /sparse has a hole (ext2/3) or an unwritten extent (ext4)
			// after the block holding its first 5000 bytes.
			_, err = fsys.RewriteFile("/sparse", make([]byte, (5000/bs+2)*bs))
			assert.ErrorIs(t, err, ErrNoRoom)
			_, err = fsys.RewriteFile("/dangling", nil)
			assert.ErrorIs(t, err, ErrNotFound)
		})
	}
}

// diffTrees returns the paths (relative, slash-rooted) whose content,
// link target or presence differs between two dumps.
func diffTrees(t *testing.T, a, b string) []string {
	t.Helper()
	list := func(root string) map[string]string {
		m := map[string]string{}
		require.NoError(t, filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			require.NoError(t, err)
			rel, _ := filepath.Rel(root, p)
			key := "/" + filepath.ToSlash(rel)
			switch {
			case info.Mode()&os.ModeSymlink != 0:
				target, err := os.Readlink(p)
				require.NoError(t, err)
				m[key] = "link:" + target
			case info.IsDir():
				m[key] = "dir"
			default:
				data, err := os.ReadFile(p)
				require.NoError(t, err)
				m[key] = string(data)
			}
			return nil
		}))
		return m
	}
	ma, mb := list(a), list(b)
	var out []string
	for k, va := range ma {
		if vb, ok := mb[k]; !ok || va != vb {
			out = append(out, k)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// TestRewriteNeedsRecovery: a filesystem whose journal needs recovery is
// refused, since replaying the journal could undo the inode patch.
func TestRewriteNeedsRecovery(t *testing.T) {
	v := variants[0]
	cp := copyImage(t, image(t, v))
	// Set needs_recovery the way debugfs does.
	oracle.Run(t, "debugfs", "-w", "-R", "feature needs_recovery", cp)
	fsys, _ := openImage(t, cp)
	require.True(t, fsys.NeedsRecovery())
	data, err := fsys.ReadFile("/etc/fstab")
	require.NoError(t, err)
	assert.Equal(t, fstab, string(data))
	_, err = fsys.RewriteFile("/etc/fstab", []byte("x\n"))
	assert.ErrorIs(t, err, ErrUnsupported)
}
