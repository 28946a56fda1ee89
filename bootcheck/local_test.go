package bootcheck_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"image"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootcheck"
	"github.com/standbykit/standbykit/internal/bootfixture"
	"github.com/standbykit/standbykit/internal/oracle"
)

var allControllers = flag.Bool("bootcheck.all", false, "TestLocal boots the test system on every controller, not only on AHCI and pvscsi")

// localOptions are the settings of the tests' checks under TCG. Stable
// is the caller's: the test system's boot loader reads the kernel
// without a word on the screen for 13 s alone on two processors, 30 s
// with two other machines running, minutes on a loaded machine — a
// failing screen must stay unchanged for longer than that to fail.
func localOptions(c localCase, dir string) bootcheck.LocalOptions {
	return bootcheck.LocalOptions{
		Disks:      []bootcheck.Disk{{Path: c.disk}},
		Controller: c.controller,
		Firmware:   c.firmware,
		MemoryMiB:  256,
		CPUs:       1,
		Settle:     3 * time.Second,
		Interval:   2 * time.Second,
		Stable:     c.stable,
		Timeout:    c.stable + 2*time.Minute,
		Dir:        dir,
	}
}

type localCase struct {
	name, disk, controller, firmware string
	want                             bootcheck.Outcome
	stable                           time.Duration
}

type localResult struct {
	v       bootcheck.Verdict
	shot    string
	err     error
	elapsed time.Duration
}

// runLocal runs the cases' checks at once, beyond go test's -parallel
// (the number of processors): most of their time is spent waiting.
func runLocal(t *testing.T, cases []localCase) []localResult {
	results := make([]localResult, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() {
			start := time.Now()
			r := &results[i]
			// With -artifacts, the screenshots are kept.
			r.v, r.shot, r.err = bootcheck.Local(context.Background(), localOptions(c, filepath.Join(t.ArtifactDir(), c.name)))
			r.elapsed = time.Since(start)
		})
	}
	wg.Wait()
	return results
}

// TestLocal boots the test system (internal/bootfixture) from a chain —
// the base disk converted to a VMDK and a VMDK delta on top of it, as a
// boot point's chain exported from ESXi — and expects it to pass; the
// same base with a qcow2 delta that zeroes the partition's first MiB
// (its boot sector) must fail, by the boot-loader text rule. Neither
// chain's files change.
//
// The good chain boots first, so that the damaged one's check can
// demand of a failing screen that it stays unchanged for half as long
// again as the good chain took to pass: with that Stable, the good
// chain, whose screen held still for only part of its boot, would have
// passed too.
func TestLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Linux under QEMU, about a minute and a half under TCG: not with -short")
	}
	oracle.Require(t, "qemu-system-x86_64")
	oracle.Require(t, "qemu-img")
	oracle.Require(t, "qemu-io")
	dir := t.TempDir()
	fixture := bootfixture.Build(t, dir)
	raw := fixture.Path

	base, good, bad := filepath.Join(dir, "base.vmdk"), filepath.Join(dir, "good.vmdk"), filepath.Join(dir, "bad.qcow2")
	oracle.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw, base)
	oracle.Run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-b", base, "-F", "vmdk", good)
	oracle.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", raw, "-F", "raw", bad)
	oracle.Run(t, "qemu-io", "-f", "qcow2", "-c", "write -z 1M 1M", bad)
	files := []string{raw, base, good, bad}
	before := hashFiles(t, files)

	// A passing boot never waits for Stable.
	long := 10 * time.Minute
	boots := []localCase{
		{name: "sata", disk: good, controller: "sata", want: bootcheck.Passed, stable: long},
		{name: "pvscsi", disk: good, controller: "pvscsi", want: bootcheck.Passed, stable: long},
	}
	damaged := []localCase{{name: "damaged-sata", disk: bad, controller: "sata", want: bootcheck.Failed}}
	if *allControllers {
		boots = append(boots,
			localCase{name: "lsilogic-sas", disk: good, controller: "lsilogic-sas", want: bootcheck.Passed, stable: long},
			localCase{name: "nvme", disk: good, controller: "nvme", want: bootcheck.Passed, stable: long})
		damaged = append(damaged, localCase{name: "damaged-pvscsi", disk: bad, controller: "pvscsi", want: bootcheck.Failed})
	}
	results := runLocal(t, boots)
	slowest := time.Duration(0)
	for _, r := range results {
		slowest = max(slowest, r.v.After)
	}
	stable := max(slowest*3/2, 20*time.Second)
	t.Logf("the good chain passed within %v: the damaged one's screen must hold still for %v", slowest.Round(time.Millisecond), stable.Round(time.Millisecond))
	for i := range damaged {
		damaged[i].stable = stable
	}
	// The EFI boot, slower (OVMF under TCG), runs beside the damaged one.
	if fixture.EFI {
		damaged = append(damaged, localCase{name: "efi-sata", disk: good, controller: "sata", firmware: bootcheck.EFI, want: bootcheck.Passed, stable: long})
	}
	results = append(results, runLocal(t, damaged)...)

	for i, c := range append(boots, damaged...) {
		t.Run(c.name, func(t *testing.T) {
			v, shot, err := results[i].v, results[i].shot, results[i].err
			if errors.Is(err, bootcheck.ErrUnavailable) && os.Getenv("STANDBYKIT_REQUIRE_ORACLES") != "1" {
				t.Skipf("%v (apt-get install ovmf)", err)
			}
			require.NoError(t, err)
			t.Logf("decided after %v (the check took %v): %v", v.After.Round(time.Millisecond), results[i].elapsed.Round(time.Millisecond), v)
			require.Equal(t, c.want, v.Outcome, "%v", v)
			require.FileExists(t, shot)
			img := decodeFile(t, shot)
			green := countNear(img, bootfixture.InitColor, 16)
			if c.want == bootcheck.Passed {
				assert.Equal(t, bootcheck.RuleScreen, v.Rule)
				// The screen that passed is the one /init filled.
				assert.Greater(t, green, img.Bounds().Dx()*img.Bounds().Dy()/50, "green pixels of /init's text in %s", shot)
				assert.Greater(t, v.Measures.TextLines, 20)
			} else {
				assert.Equal(t, bootcheck.RuleBootLoaderText, v.Rule)
				assert.Zero(t, green, "green pixels of /init's text in %s", shot)
			}
		})
	}
	assert.Equal(t, before, hashFiles(t, files), "the chains' files changed")
}

func hashFiles(t *testing.T, files []string) map[string][32]byte {
	t.Helper()
	sums := map[string][32]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		sums[f] = sha256.Sum256(data)
	}
	return sums
}

func decodeFile(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := bootcheck.Decode(f)
	require.NoError(t, err)
	return img
}

// countNear counts the pixels within tol of c in each channel.
func countNear(img image.Image, c interface{ RGBA() (r, g, b, a uint32) }, tol int) int {
	cr, cg, cb, _ := c.RGBA()
	near := func(a, b uint32) bool { d := int(a>>8) - int(b>>8); return d <= tol && d >= -tol }
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, cr) && near(g, cg) && near(bl, cb) {
				n++
			}
		}
	}
	return n
}
