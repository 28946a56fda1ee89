package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// KernelMeta is the Debian package that depends on the current kernel
// image package of the release (linux-image-6.1.0-<abi>-amd64 on Debian
// 12).
const KernelMeta = "linux-image-amd64"

// DefaultCacheDir is where downloaded kernel packages and their
// extractions are kept: $XDG_CACHE_HOME/standbykit, else
// ~/.cache/standbykit (os.UserCacheDir).
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("image: no cache directory: %w", err)
	}
	return filepath.Join(dir, "standbykit"), nil
}

var kernelPackage = regexp.MustCompile(`^linux-image-[0-9][0-9a-z.+~-]*-amd64$`)

// ResolveKernelPackage asks apt-cache which kernel image package
// KernelMeta depends on.
func ResolveKernelPackage(ctx context.Context) (string, error) {
	out, err := run(ctx, "", "apt-cache", "depends", KernelMeta)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(out), "\n") {
		dep, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends:")
		if dep = strings.TrimSpace(dep); ok && kernelPackage.MatchString(dep) {
			return dep, nil
		}
	}
	return "", fmt.Errorf("image: apt-cache depends %s names no kernel image package:\n%s", KernelMeta, out)
}

// DownloadKernel returns the .deb of the release's current kernel image
// package in cacheDir/kernel, downloading it with apt-get download when
// it is not there yet (apt-get's package lists must be up to date:
// apt-get update).
func DownloadKernel(ctx context.Context, cacheDir string) (string, error) {
	pkg, err := ResolveKernelPackage(ctx)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, "kernel")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return "", err
	}
	defer unlock()
	find := func() string {
		debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*_amd64.deb"))
		if len(debs) == 0 {
			return ""
		}
		return debs[len(debs)-1] // several versions of one ABI: the last by name
	}
	if deb := find(); deb != "" {
		return deb, nil
	}
	if _, err := run(ctx, dir, "apt-get", "download", "-q", pkg); err != nil {
		return "", err
	}
	if deb := find(); deb != "" {
		return deb, nil
	}
	return "", fmt.Errorf("image: apt-get download %s left no .deb in %s", pkg, dir)
}

// ExtractKernel unpacks a kernel image .deb with dpkg-deb -x into
// cacheDir/kernel/<name>-<sha256 prefix>.d (once: a later call with the
// same file reuses it) and returns the kernel in it.
func ExtractKernel(ctx context.Context, deb, cacheDir string) (Kernel, error) {
	f, err := os.Open(deb)
	if err != nil {
		return Kernel{}, fmt.Errorf("image: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return Kernel{}, fmt.Errorf("image: reading %s: %w", deb, err)
	}
	dir := filepath.Join(cacheDir, "kernel")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("image: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return Kernel{}, err
	}
	defer unlock()
	dest := filepath.Join(dir, strings.TrimSuffix(filepath.Base(deb), ".deb")+"-"+hex.EncodeToString(h.Sum(nil))[:12]+".d")
	if _, err := os.Stat(dest); err == nil {
		return FindKernel(dest)
	}
	tmp, err := os.MkdirTemp(dir, ".extract-")
	if err != nil {
		return Kernel{}, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(tmp)
	if _, err := run(ctx, "", "dpkg-deb", "-x", deb, tmp); err != nil {
		return Kernel{}, err
	}
	if _, err := FindKernel(tmp); err != nil {
		return Kernel{}, fmt.Errorf("image: %s: %w", deb, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return Kernel{}, fmt.Errorf("image: %w", err)
	}
	return FindKernel(dest)
}

// run runs a command in dir and returns its standard output, or an error
// holding its standard error.
func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("image: %s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
