package main

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx/esxsim"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	return string(b)
}

// The README's configuration reference has a row for every field the
// configuration file takes, with a default and a range.
func TestReadmeDocumentsEveryConfigField(t *testing.T) {
	text := readme(t)
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for name, ft := range jsonFields(typ) {
			path := prefix + name
			row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(path) + "` \\| ([^|]+) \\| ([^|]+) \\| ([^|]+) \\|$").FindStringSubmatch(text)
			require.NotNil(t, row, "README.md has no configuration reference row for %s", path)
			for _, cell := range row[1:] {
				require.NotEmpty(t, strings.TrimSpace(cell), "%s: empty cell", path)
			}
			switch {
			case ft.Kind() == reflect.Struct:
				walk(path+".", ft)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(path+"[].", ft.Elem())
			}
		}
	}
	walk("", reflect.TypeFor[config]())
}

// The README's examples name networks the simulator has, so that they
// work as written without GOVC_URL.
func TestReadmeNetworksExistOnTheSimulator(t *testing.T) {
	text := readme(t)
	found := 0
	for _, m := range regexp.MustCompile(`(?:--network |"network": )"([^"]+)"`).FindAllStringSubmatch(text, -1) {
		found++
		require.True(t, slices.Contains(esxsim.Networks, m[1]), "README.md names network %q, not one of the simulator's %q", m[1], esxsim.Networks)
	}
	require.NotZero(t, found)
}
