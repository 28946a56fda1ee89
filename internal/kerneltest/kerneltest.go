// Package kerneltest gives tests a Debian kernel — for the writer
// appliance, and for the small Linux system the boot check's tests boot
// (internal/bootfixture): the .deb named by STANDBYKIT_KERNEL_DEB, else the current
// Debian kernel image package, downloaded with apt-get into the cache
// (image.DefaultCacheDir) once, unpacked there once.
//
// When none can be had (no apt-get or dpkg-deb, no package lists, no
// network), the test is skipped, or fails when STANDBYKIT_REQUIRE_ORACLES=1
// (CI).
package kerneltest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/standbykit/standbykit/esx/appliance/image"
)

// Kernel returns the unpacked kernel package.
func Kernel(t testing.TB) image.Kernel {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("STANDBYKIT_REQUIRE_ORACLES") == "1" {
			t.Fatalf("a Debian kernel package is required here: "+format, args...)
		}
		t.Skipf("no Debian kernel package (set STANDBYKIT_KERNEL_DEB to a linux-image-*-amd64 .deb, or apt-get update): "+format, args...)
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		unavailable("dpkg-deb missing (apt-get install dpkg)")
	}
	cache, err := image.DefaultCacheDir()
	if err != nil {
		unavailable("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	deb := os.Getenv("STANDBYKIT_KERNEL_DEB")
	if deb == "" {
		if _, err := exec.LookPath("apt-get"); err != nil {
			unavailable("apt-get missing")
		}
		if deb, err = image.DownloadKernel(ctx, cache); err != nil {
			unavailable("%v", err)
		}
	}
	k, err := image.ExtractKernel(ctx, deb, cache)
	if err != nil {
		t.Fatalf("unpacking %s: %v", deb, err)
	}
	return k
}
