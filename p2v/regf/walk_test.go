package regf

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
)

// keyDump is what hivexsh shows of a key: its sorted subkey names and its
// lsval lines.
type keyDump struct {
	Subkeys []string
	Values  []string
}

// typedError reports whether err is one of the package's errors.
func typedError(err error) bool {
	for _, e := range []error{ErrNotHive, ErrCorrupt, ErrDirty, ErrNotFound, ErrUnsupported, ErrNoRoom} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// walk visits every key breadth first (each nk once, at most limit keys)
// and returns the dump of each key by path ("" = root) and the paths in
// visit order.
func walk(h *Hive, limit int) (map[string]keyDump, []string, error) {
	root, err := h.Root()
	if err != nil {
		return nil, nil, err
	}
	type item struct {
		path string
		k    *Key
	}
	seen := map[uint32]bool{root.off: true}
	queue := []item{{"", root}}
	out := map[string]keyDump{}
	var order []string
	for len(queue) > 0 && len(order) < limit {
		it := queue[0]
		queue = queue[1:]
		subs, err := it.k.Subkeys()
		if err != nil {
			return nil, nil, err
		}
		var d keyDump
		for _, s := range subs {
			d.Subkeys = append(d.Subkeys, s.Name())
			if !seen[s.off] {
				seen[s.off] = true
				p := s.Name()
				if it.path != "" {
					p = it.path + `\` + s.Name()
				}
				queue = append(queue, item{p, s})
			}
		}
		sort.Strings(d.Subkeys)
		vals, err := it.k.Values()
		if err != nil {
			return nil, nil, err
		}
		for _, v := range vals {
			line, err := lsvalLine(v)
			if err != nil {
				return nil, nil, err
			}
			d.Values = append(d.Values, line)
		}
		if _, err := it.k.Class(); err != nil {
			return nil, nil, err
		}
		out[it.path] = d
		order = append(order, it.path)
	}
	return out, order, nil
}

// lsvalLine formats v as hivexsh's lsval does, exercising the typed
// getters on the way.
func lsvalLine(v *Value) (string, error) {
	quote := func(s string) string {
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
		return `"` + r.Replace(s) + `"`
	}
	name := `"@"`
	if v.Name() != "" {
		name = quote(v.Name())
	}
	data, err := v.Bytes()
	if err != nil {
		return "", err
	}
	switch t := v.Type(); t {
	case RegSZ, RegExpandSZ, RegLink:
		s, err := v.String()
		if err != nil {
			return "", err
		}
		if t != RegSZ {
			return fmt.Sprintf("%s=str(%d):%s", name, t, quote(s)), nil
		}
		return name + "=" + quote(s), nil
	case RegDWORD, RegDWORDBigEndian:
		if len(data) == 4 {
			d, err := v.DWORD()
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s=dword:%08x", name, d), nil
		}
	case RegMultiSZ:
		if _, err := v.MultiString(); err != nil {
			return "", err
		}
	case RegQWORD:
		if len(data) == 8 {
			if _, err := v.QWORD(); err != nil {
				return "", err
			}
		}
	}
	return fmt.Sprintf("%s=hex(%d):%s", name, v.Type(), hexBytes(data)), nil
}

// hivexDump runs one read-only hivexsh script that, for each path, prints
// the path (cd), ls, the path again and lsval, and parses it.
func hivexDump(t *testing.T, path string, paths []string) map[string]keyDump {
	t.Helper()
	oracle.Require(t, "hivexsh")
	var s strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&s, "cd \\%s\ncd\nls\ncd\nlsval\n", p)
	}
	sp := writeHive(t, []byte(s.String()))
	out := string(oracle.Run(t, "hivexsh", "-f", sp, path))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	res := map[string]keyDump{}
	i := 0
	for _, p := range paths {
		marker := `\` + p
		if i >= len(lines) || lines[i] != marker {
			t.Fatalf("hivexsh output: expected %q at line %d, got %q", marker, i, lines[min(i, len(lines)-1)])
		}
		i++
		var d keyDump
		for ; i < len(lines) && lines[i] != marker; i++ {
			d.Subkeys = append(d.Subkeys, lines[i])
		}
		i++ // second marker
		for ; i < len(lines) && !strings.HasPrefix(lines[i], `\`); i++ {
			d.Values = append(d.Values, lines[i])
		}
		sort.Strings(d.Subkeys)
		res[p] = d
	}
	if i != len(lines) {
		t.Fatalf("hivexsh output: %d unparsed lines from %q", len(lines)-i, lines[i])
	}
	return res
}

// hivexget returns `hivexget hive key value` without the newline.
func hivexget(t *testing.T, path, key, value string) string {
	t.Helper()
	oracle.Require(t, "hivexget")
	return strings.TrimSuffix(string(oracle.Run(t, "hivexget", path, key, value)), "\n")
}
