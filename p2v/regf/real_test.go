package regf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"

	"github.com/standbykit/standbykit/internal/oracle"
)

// realFiles caches the decompressed test files: several tests use the
// same hives, and the pure-Go xz reader takes seconds for a 12 MiB one.
var realFiles sync.Map

// realFile returns testdata/<name>.xz decompressed (a copy the caller may
// change): hives and logs made by Windows, published by forensic projects
// (see testdata/README.md). The xz tool is used when present, as it is
// much faster than the Go reader.
func realFile(t testing.TB, name string) []byte {
	t.Helper()
	if b, ok := realFiles.Load(name); ok {
		return bytes.Clone(b.([]byte))
	}
	path := filepath.Join("testdata", name+".xz")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(name, "yarp/") {
		// A module download leaves the GPL-licensed yarp files out
		// (testdata/yarp is a module of its own).
		t.Skipf("%s is not here: yarp's test hives are only in a checkout of the repository", path)
	}
	b, err := exec.Command("xz", "-dc", path).Output()
	if err != nil {
		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		r, err := xz.NewReader(f)
		require.NoError(t, err)
		b, err = io.ReadAll(r)
		require.NoError(t, err)
	}
	realFiles.Store(name, b)
	return bytes.Clone(b)
}

// realLogs returns the named log files, each under its base name.
func realLogs(t testing.TB, names ...string) []LogFile {
	t.Helper()
	var out []LogFile
	for _, n := range names {
		out = append(out, LogFile{Name: filepath.Base(n), Data: realFile(t, n)})
	}
	return out
}

// hivexKey is a key as hivexml shows it: its last written time and its
// values as (name, data) pairs.
type hivexKey struct {
	mtime  string
	values map[[2]string]bool
}

// hivexTree reads a hive with hivexml (an independent reader) and returns
// its keys by path ("\A\B", the root is "").
func hivexTree(t testing.TB, hive []byte) map[string]hivexKey {
	t.Helper()
	oracle.Require(t, "hivexml")
	path := filepath.Join(t.TempDir(), "hive")
	require.NoError(t, os.WriteFile(path, hive, 0o644))
	type value struct {
		Key     string   `xml:"key,attr"`
		Type    string   `xml:"type,attr"`
		Value   string   `xml:"value,attr"`
		Strings []string `xml:"string"`
	}
	type node struct {
		Name   string  `xml:"name,attr"`
		Mtime  string  `xml:"mtime"`
		Values []value `xml:"value"`
		Nodes  []node  `xml:"node"`
	}
	var doc struct {
		Root node `xml:"node"`
	}
	require.NoError(t, xml.Unmarshal(oracle.Run(t, "hivexml", path), &doc))
	out := map[string]hivexKey{}
	var visit func(n node, path string)
	visit = func(n node, path string) {
		k := hivexKey{mtime: n.Mtime, values: map[[2]string]bool{}}
		for _, v := range n.Values {
			if v.Type == "string-list" {
				for _, s := range v.Strings {
					k.values[[2]string{v.Key, s}] = true
				}
				continue
			}
			// regipy's comparison leaves out empty and zero data.
			if v.Value == "" || (strings.HasPrefix(v.Type, "int") && v.Value == "0") {
				continue
			}
			k.values[[2]string{v.Key, v.Value}] = true
		}
		out[path] = k
		for _, c := range n.Nodes {
			visit(c, path+`\`+c.Name)
		}
	}
	visit(doc.Root, "")
	return out
}

// treeDiff counts what regipy's compare_hives reports between two hives:
// keys present in only one, and for keys in both whose last written time
// differs, the (name, data) pairs of values whose name is in only one.
func treeDiff(a, b map[string]hivexKey) (keys, values int) {
	names := func(vs map[[2]string]bool) map[string]bool {
		m := map[string]bool{}
		for v := range vs {
			m[v[0]] = true
		}
		return m
	}
	only := func(x, y hivexKey) int {
		nx, ny := names(x.values), names(y.values)
		n := 0
		for v := range x.values {
			if nx[v[0]] && !ny[v[0]] {
				n++
			}
		}
		return n
	}
	for p, ka := range a {
		kb, ok := b[p]
		if !ok {
			keys++
			continue
		}
		if ka.mtime != kb.mtime {
			values += only(ka, kb) + only(kb, ka)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			keys++
		}
	}
	return keys, values
}

// hivexNodes counts the keys hivexml reads in a hive.
func hivexNodes(t testing.TB, hive []byte) int {
	t.Helper()
	oracle.Require(t, "hivexml")
	path := filepath.Join(t.TempDir(), "hive")
	require.NoError(t, os.WriteFile(path, hive, 0o644))
	return bytes.Count(oracle.Run(t, "hivexml", path), []byte("<node "))
}
