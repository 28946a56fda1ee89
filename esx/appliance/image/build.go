package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/standbykit/standbykit/esx/appliance/internal/kmod"
)

// WriterPackage is the /init program's import path.
const WriterPackage = "github.com/standbykit/standbykit/esx/appliance/cmd/standbykit-writer"

// File names Build writes in the output directory.
const (
	KernelFile = "vmlinuz"
	InitrdFile = "initrd.img"
)

// ESXiCmdline is the kernel command line for the appliance on ESXi: the
// kernel's messages on the VM's screen, the report on its one serial
// port (the writer's default, ttyS0), and a reboot rather than a hang
// should the kernel panic.
const ESXiCmdline = "console=tty0 quiet panic=-1"

// Options tell Build where the kernel and the writer come from.
type Options struct {
	// Out is the directory the boot files are written to (created).
	Out string
	// KernelRoot is an unpacked kernel package (see Kernel); if empty,
	// KernelDeb is unpacked; if that is empty too, the release's current
	// kernel package is downloaded with apt-get (DownloadKernel).
	KernelRoot string
	KernelDeb  string
	// CacheDir keeps downloads and extractions (DefaultCacheDir if
	// empty).
	CacheDir string
	// Modules are the drivers to load (DefaultModules if nil); their
	// dependencies are added.
	Modules []string
	// Writer is a prebuilt /init program; if empty, WriterPackage is
	// built with "go build" (static: CGO_ENABLED=0, linux/amd64) from
	// the module the current directory is in.
	Writer string
	// Uncompressed leaves the initramfs a plain cpio archive instead of
	// gzip-compressing it.
	Uncompressed bool
	// Log, if set, receives one line per step.
	Log io.Writer
}

// OutFile is one file Build wrote.
type OutFile struct {
	Path string
	Size int64
}

// Result is what Build made.
type Result struct {
	Kernel  Kernel
	Vmlinuz string // Out/vmlinuz
	Initrd  string // Out/initrd.img
	// Modules are the modules in the initramfs, in load order; Builtin
	// the requested ones the kernel has built in.
	Modules []string
	Builtin []string
	Files   []OutFile
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Build makes the appliance's boot files in opts.Out: the kernel
// (vmlinuz) and an initramfs (initrd.img) holding the writer as /init,
// the modules it loads with a modules.dep listing them, the kernel's
// modules.builtin, the mount points /dev, /proc and /sys, and
// /dev/console.
func Build(ctx context.Context, opts Options) (*Result, error) {
	if opts.Out == "" {
		return nil, fmt.Errorf("image: no output directory")
	}
	if opts.Modules == nil {
		opts.Modules = DefaultModules
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	k, err := opts.kernel(ctx)
	if err != nil {
		return nil, err
	}
	opts.logf("kernel %s from %s", k.Version, k.Root)
	sel, err := k.Select(opts.Modules)
	if err != nil {
		return nil, err
	}

	writer := opts.Writer
	if writer == "" {
		writer = filepath.Join(opts.Out, ".standbykit-writer")
		defer os.Remove(writer)
		opts.logf("go build %s", WriterPackage)
		if err := BuildWriter(ctx, writer); err != nil {
			return nil, err
		}
	}
	init, err := os.ReadFile(writer)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}

	res := &Result{Kernel: k, Builtin: sel.Builtin,
		Vmlinuz: filepath.Join(opts.Out, KernelFile), Initrd: filepath.Join(opts.Out, InitrdFile)}
	var archive bytes.Buffer
	if err := writeInitramfs(&archive, k, sel, init); err != nil {
		return nil, err
	}
	for _, m := range sel.Modules {
		res.Modules = append(res.Modules, m.Name)
	}
	data := archive.Bytes()
	if !opts.Uncompressed {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		if _, err := zw.Write(data); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		data = z.Bytes()
	}
	if err := writeFileAtomic(res.Initrd, data); err != nil {
		return nil, err
	}
	vmlinuz, err := os.ReadFile(k.Vmlinuz())
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if err := writeFileAtomic(res.Vmlinuz, vmlinuz); err != nil {
		return nil, err
	}
	for _, p := range []string{res.Vmlinuz, res.Initrd} {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		res.Files = append(res.Files, OutFile{Path: p, Size: fi.Size()})
	}
	return res, nil
}

// kernel finds, unpacks or downloads the kernel as opts say.
func (o *Options) kernel(ctx context.Context) (Kernel, error) {
	if o.KernelRoot != "" {
		return FindKernel(o.KernelRoot)
	}
	cache := o.CacheDir
	if cache == "" {
		var err error
		if cache, err = DefaultCacheDir(); err != nil {
			return Kernel{}, err
		}
	}
	deb := o.KernelDeb
	if deb == "" {
		var err error
		if deb, err = DownloadKernel(ctx, cache); err != nil {
			return Kernel{}, err
		}
	}
	o.logf("kernel package %s", deb)
	return ExtractKernel(ctx, deb, cache)
}

// BuildWriter builds the /init program, static, for linux/amd64, into
// out, with the go command on the PATH, from the module the current
// directory belongs to.
func BuildWriter(ctx context.Context, out string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("image: building the writer needs the go command: %w", err)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", abs, WriterPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("image: go build %s: %w\n%s", WriterPackage, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// writeInitramfs writes the initramfs cpio archive.
func writeInitramfs(w io.Writer, k Kernel, sel *Selection, init []byte) error {
	c := NewCPIO(w)
	for _, d := range []string{"dev", "proc", "sys"} {
		if err := c.Dir(d, 0o755); err != nil {
			return err
		}
	}
	// The kernel opens /dev/console as init's standard input and output
	// before devtmpfs is mounted over /dev.
	if err := c.CharDevice("dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := c.File("init", 0o755, init); err != nil {
		return err
	}
	moddir := path.Join("lib/modules", k.Version)
	var plain []*kmod.Module
	for _, m := range sel.Modules {
		data, err := k.ModuleData(m.Path)
		if err != nil {
			return err
		}
		p := plainPath(m.Path)
		if err := c.File(path.Join(moddir, p), 0o644, data); err != nil {
			return err
		}
		plain = append(plain, &kmod.Module{Name: m.Name, Path: p, Deps: m.Deps})
	}
	dep, err := kmod.Format(plain)
	if err != nil {
		return err
	}
	if err := c.File(path.Join(moddir, "modules.dep"), 0o644, dep); err != nil {
		return err
	}
	builtin, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.builtin"))
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := c.File(path.Join(moddir, "modules.builtin"), 0o644, builtin); err != nil {
		return err
	}
	return c.Close()
}

// writeFileAtomic writes data to name through a temporary file renamed
// over it.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("image: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}
