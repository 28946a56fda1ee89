package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/standbykit/standbykit/esx/appliance/internal/kmod"
)

// DefaultModules are the drivers the appliance loads: one per disk
// controller StandbyKit gives standby VMs, and the SCSI disk driver
// (SATA disks behind AHCI are SCSI disks too). Their dependencies come
// from the kernel's module list, never from here.
var DefaultModules = []string{
	"vmw_pvscsi", // VMware paravirtual SCSI
	"mptsas",     // LSI Logic SAS (SAS1068)
	"ahci",       // SATA
	"nvme",       // NVMe
	"sd_mod",     // SCSI disks
}

// Kernel is an unpacked kernel package: a root holding
// boot/vmlinuz-<version> and lib/modules/<version>/ (Debian's
// linux-image packages, dpkg-deb -x'ed, have this layout).
type Kernel struct {
	Root    string
	Version string
}

// Vmlinuz is the kernel image's path.
func (k Kernel) Vmlinuz() string { return filepath.Join(k.Root, "boot", "vmlinuz-"+k.Version) }

// ModulesDir is lib/modules/<version>.
func (k Kernel) ModulesDir() string { return filepath.Join(k.Root, "lib", "modules", k.Version) }

// FindKernel looks for the one kernel under root: a boot/vmlinuz-<v>
// with a lib/modules/<v>/ directory. Several kernels are an error.
func FindKernel(root string) (Kernel, error) {
	vmlinuz, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil {
		return Kernel{}, err
	}
	var found []Kernel
	for _, v := range vmlinuz {
		k := Kernel{Root: root, Version: strings.TrimPrefix(filepath.Base(v), "vmlinuz-")}
		if fi, err := os.Stat(k.ModulesDir()); err == nil && fi.IsDir() {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return Kernel{}, fmt.Errorf("image: no kernel under %s (want boot/vmlinuz-<version> and lib/modules/<version>/)", root)
	case 1:
		return found[0], nil
	}
	var vs []string
	for _, k := range found {
		vs = append(vs, k.Version)
	}
	return Kernel{}, fmt.Errorf("image: several kernels under %s: %s", root, strings.Join(vs, ", "))
}

// Builtin returns the names of the modules built into the kernel, from
// modules.builtin.
func (k Kernel) Builtin() (map[string]bool, error) {
	data, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	set := map[string]bool{}
	for _, line := range strings.Fields(string(data)) {
		set[kmod.Name(line)] = true
	}
	return set, nil
}

// Selection is the modules an initramfs needs.
type Selection struct {
	// Modules in load order (each after the modules it needs), with
	// their paths in the kernel package (compressed or not) and their
	// direct dependencies.
	Modules []*kmod.Module
	// Builtin names the requested modules the kernel has built in (not
	// loaded, not copied).
	Builtin []string
}

// Select returns the modules roots need, dependencies included: from
// the kernel's modules.dep when the package has one (it is made by
// depmod at install time, so Debian's packages do not), else from the
// "depends=" field of each module's .modinfo section, which is what
// depmod's list is made of. A root that is neither a module file nor
// built in is an error.
func (k Kernel) Select(roots []string) (*Selection, error) {
	builtin, err := k.Builtin()
	if err != nil {
		return nil, err
	}
	sel := &Selection{}
	var want []string
	for _, r := range roots {
		n := kmod.Name(r)
		if builtin[n] {
			sel.Builtin = append(sel.Builtin, n)
		} else {
			want = append(want, n)
		}
	}
	var deps kmod.Deps
	if text, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.dep")); err == nil {
		if deps, err = kmod.Parse(text); err != nil {
			return nil, err
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		if deps, err = k.modinfoDeps(want); err != nil {
			return nil, err
		}
	} else {
		return nil, fmt.Errorf("image: %w", err)
	}
	sel.Modules, err = deps.Order(want...)
	if err != nil {
		return nil, fmt.Errorf("image: kernel %s: %w", k.Version, err)
	}
	return sel, nil
}

// moduleFile reports whether name is a module file and its compression
// suffix.
func moduleFile(name string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// modinfoDeps builds the dependency list of roots and everything they
// need from the modules' .modinfo sections.
func (k Kernel) modinfoDeps(roots []string) (kmod.Deps, error) {
	files := map[string]string{} // name → path relative to ModulesDir
	dir := k.ModulesDir()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && moduleFile(d.Name()) {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			name := kmod.Name(d.Name())
			if prev, ok := files[name]; ok {
				return fmt.Errorf("image: module %s twice: %s and %s", name, prev, rel)
			}
			files[name] = filepath.ToSlash(rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image: listing modules: %w", err)
	}
	deps := kmod.Deps{}
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if deps[name] != nil {
			continue
		}
		rel, ok := files[name]
		if !ok {
			continue // Order reports it
		}
		data, err := k.ModuleData(rel)
		if err != nil {
			return nil, err
		}
		info, err := Modinfo(data)
		if err != nil {
			return nil, fmt.Errorf("image: %s: %w", rel, err)
		}
		m := &kmod.Module{Name: name, Path: rel}
		for _, d := range strings.Split(info["depends"], ",") {
			if d = strings.TrimSpace(d); d != "" {
				m.Deps = append(m.Deps, kmod.Name(d))
			}
		}
		sort.Strings(m.Deps)
		deps[name] = m
		queue = append(queue, m.Deps...)
	}
	return deps, nil
}

// Modinfo returns the key=value pairs of a module's .modinfo section
// (the last value of a repeated key, such as alias, wins).
func Modinfo(ko []byte) (map[string]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, errors.New("no .modinfo section: not a kernel module")
	}
	data, err := s.Data()
	if err != nil {
		return nil, err
	}
	info := map[string]string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if key, val, ok := bytes.Cut(kv, []byte("=")); ok {
			info[string(key)] = string(val)
		}
	}
	return info, nil
}

// ModuleData reads a module file (a path relative to ModulesDir),
// decompressed when it is .ko.xz, .ko.zst or .ko.gz. (Debian 12's
// kernels ship plain .ko files; later ones compress them.)
func (k Kernel) ModuleData(rel string) ([]byte, error) {
	f, err := os.Open(filepath.Join(k.ModulesDir(), filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	switch path.Ext(rel) {
	case ".ko":
	case ".xz":
		if r, err = xz.NewReader(r); err != nil {
			return nil, fmt.Errorf("image: %s: %w", rel, err)
		}
	case ".zst":
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("image: %s: %w", rel, err)
		}
		defer zr.Close()
		r = zr
	case ".gz":
		if r, err = gzip.NewReader(r); err != nil {
			return nil, fmt.Errorf("image: %s: %w", rel, err)
		}
	default:
		return nil, fmt.Errorf("image: %s is not a kernel module file", rel)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("image: %s: %w", rel, err)
	}
	return data, nil
}

// plainPath is a module's path with its compression suffix removed (the
// initramfs holds decompressed modules).
func plainPath(rel string) string {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(rel, ".ko"+ext) {
			return strings.TrimSuffix(rel, ext)
		}
	}
	return rel
}
