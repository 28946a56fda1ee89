// Package oracle finds the external tools that tests compare StandbyKit
// against (qemu-img, vmdkinfo, sfdisk, mkntfs, …). A missing tool skips the
// test with a message naming the Debian package, except when
// STANDBYKIT_REQUIRE_ORACLES=1 (set by .ci/run in CI), where it fails.
package oracle

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// packages names the Debian package of each tool, for the skip message.
var packages = map[string]string{
	"qemu-img":  "qemu-utils",
	"qemu-io":   "qemu-utils",
	"vmdkinfo":  "libvmdk-utils",
	"sfdisk":    "fdisk",
	"mkntfs":    "ntfs-3g",
	"ntfscp":    "ntfs-3g",
	"ntfscat":   "ntfs-3g",
	"hivexsh":   "libhivex-bin",
	"hivexget":  "libhivex-bin",
	"debugfs":   "e2fsprogs",
	"mkfs.ext4": "e2fsprogs",
	"e2fsck":    "e2fsprogs",
	"cpio":      "cpio",
	"mkfs.fat":  "dosfstools",
	"mcopy":     "mtools",
	"mmd":       "mtools",
	"syslinux":  "syslinux",

	"qemu-system-x86_64": "qemu-system-x86", // the writer appliance's boot test
}

// Require returns the path of tool, or skips (fails, in CI) the test.
func Require(t testing.TB, tool string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	pkg := packages[tool]
	if pkg == "" {
		pkg = tool
	}
	if os.Getenv("STANDBYKIT_REQUIRE_ORACLES") == "1" {
		t.Fatalf("oracle tool %s (Debian package %s) is required here but missing", tool, pkg)
	}
	t.Skipf("oracle tool %s missing (apt-get install %s): skipping this comparison", tool, pkg)
	return ""
}

// Run runs tool with args and returns its standard output; it fails the
// test with the tool's combined output when the tool fails.
func Run(t testing.TB, tool string, args ...string) []byte {
	t.Helper()
	out, err := Output(tool, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	return out
}

// Output runs tool and returns its standard output, or on failure its
// combined output and the error. It does not check that tool exists: call
// Require first.
func Output(tool string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(tool, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return append(stdout.Bytes(), stderr.Bytes()...), err
	}
	return stdout.Bytes(), nil
}
