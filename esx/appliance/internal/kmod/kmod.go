// Package kmod reads and writes modules.dep, the kernel module dependency
// list depmod makes, and orders modules so that each is loaded after the
// modules it needs: what the writer appliance's /init does in place of
// modprobe, and how the appliance builder picks the modules it puts into
// the initramfs.
//
// A modules.dep line is "path: dep-path dep-path ...", paths relative to
// lib/modules/<version>/. A module is named by its file's base name
// without .ko and a compression suffix, '-' turned into '_' (the kernel's
// own spelling, as modprobe does), so "kernel/drivers/nvme/host/nvme-core.ko"
// is nvme_core.
package kmod

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// Name returns the module name of a module file path or a name as
// .modinfo's depends= field spells it.
func Name(p string) string {
	base := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.TrimSuffix(base, ".ko")
	return strings.ReplaceAll(base, "-", "_")
}

// Module is one module of a dependency list.
type Module struct {
	Name string
	// Path is the file, relative to lib/modules/<version>/.
	Path string
	// Deps are the names of the modules it needs (direct, or all of them
	// as modules.dep lists them).
	Deps []string
}

// Deps is a dependency list, by module name.
type Deps map[string]*Module

// Parse reads modules.dep text. Blank lines and lines starting with '#'
// are ignored; a module listed twice, an empty path or a line without
// ':' is an error.
func Parse(text []byte) (Deps, error) {
	d := Deps{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		p, rest, ok := strings.Cut(line, ":")
		p = strings.TrimSpace(p)
		if !ok || p == "" {
			return nil, fmt.Errorf("kmod: modules.dep line %d: want \"path: deps\", have %q", n, line)
		}
		m := &Module{Name: Name(p), Path: p}
		if d[m.Name] != nil {
			return nil, fmt.Errorf("kmod: modules.dep line %d: module %s listed twice", n, m.Name)
		}
		for _, dep := range strings.Fields(rest) {
			m.Deps = append(m.Deps, Name(dep))
		}
		d[m.Name] = m
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kmod: modules.dep: %w", err)
	}
	return d, nil
}

// Order returns the modules names need with their dependencies, each
// after every module it needs, ties broken by name so that the order is
// reproducible. A name or dependency the list does not have, and a
// dependency cycle, are errors.
func (d Deps) Order(names ...string) ([]*Module, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var out []*Module
	var visit func(name string, from []string) error
	visit = func(name string, from []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("kmod: dependency cycle: %s", strings.Join(append(from, name), " → "))
		}
		m := d[name]
		if m == nil {
			if len(from) == 0 {
				return fmt.Errorf("kmod: no module %s", name)
			}
			return fmt.Errorf("kmod: module %s needs %s, which the list does not have", from[len(from)-1], name)
		}
		state[name] = visiting
		deps := slices.Clone(m.Deps)
		sort.Strings(deps)
		for _, dep := range deps {
			if err := visit(dep, append(from, name)); err != nil {
				return err
			}
		}
		state[name] = done
		out = append(out, m)
		return nil
	}
	sorted := slices.Clone(names)
	for i := range sorted {
		sorted[i] = Name(sorted[i])
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// All returns every module's name, sorted.
func (d Deps) All() []string {
	names := make([]string, 0, len(d))
	for name := range d {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Format writes modules as modules.dep text, as depmod does: one line per
// module in the order given, each listing every module it needs directly
// or not, those needed last first (modprobe loads a line's list from its
// end). modules must hold every dependency of each (Order's result does).
func Format(modules []*Module) ([]byte, error) {
	d := Deps{}
	for _, m := range modules {
		d[m.Name] = m
	}
	var b bytes.Buffer
	for _, m := range modules {
		order, err := d.Order(m.Deps...)
		if err != nil {
			return nil, fmt.Errorf("kmod: %s: %w", m.Name, err)
		}
		b.WriteString(m.Path)
		b.WriteByte(':')
		for i := len(order) - 1; i >= 0; i-- {
			b.WriteByte(' ')
			b.WriteString(order[i].Path)
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}
