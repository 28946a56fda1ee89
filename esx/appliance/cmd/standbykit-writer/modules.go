package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/standbykit/standbykit/esx/appliance/internal/kmod"
)

// loadModules loads every module dir/modules.dep lists, each after the
// modules it needs, with load (finit_module on the appliance) and the
// parameters params gives it (by module name), as modprobe does with
// those of the kernel command line. A module
// that fails to load is reported and the others are still tried: the
// disks it drives are then missing, which the payload's guard notices.
func loadModules(dir string, params map[string]string, load func(path, params string) error, logf func(string, ...any)) (loaded int, err error) {
	text, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return 0, err
	}
	deps, err := kmod.Parse(text)
	if err != nil {
		return 0, err
	}
	order, err := deps.Order(deps.All()...)
	if err != nil {
		return 0, err
	}
	var failed []string
	for _, m := range order {
		if lerr := load(filepath.Join(dir, filepath.FromSlash(m.Path)), params[m.Name]); lerr != nil {
			logf("module %s: %v", m.Name, lerr)
			failed = append(failed, m.Name)
			continue
		}
		loaded++
	}
	if len(failed) > 0 {
		return loaded, fmt.Errorf("modules not loaded: %v", failed)
	}
	return loaded, nil
}

// modulesDir is the directory of the running kernel's modules: release
// is uname -r; if the initramfs has no directory of that name, its one
// lib/modules/* directory.
func modulesDir(root, release string) (string, error) {
	dir := filepath.Join(root, "lib/modules", release)
	if _, err := os.Stat(filepath.Join(dir, "modules.dep")); err == nil {
		return dir, nil
	}
	found, _ := filepath.Glob(filepath.Join(root, "lib/modules/*/modules.dep"))
	if len(found) == 1 {
		return filepath.Dir(found[0]), nil
	}
	return "", fmt.Errorf("no modules.dep for kernel %s under %s/lib/modules", release, root)
}
