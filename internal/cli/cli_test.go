package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseInterspersed(t *testing.T) {
	for _, c := range []struct {
		args       []string
		positional []string
		point      int
		json       bool
	}{
		{[]string{"web01"}, []string{"web01"}, -1, false},
		{[]string{"--point", "3", "web01"}, []string{"web01"}, 3, false},
		{[]string{"web01", "--point", "3", "--json"}, []string{"web01"}, 3, true},
		{[]string{"a", "-json", "b", "-point=2"}, []string{"a", "b"}, 2, true},
		{[]string{"--json", "--", "--point", "x"}, []string{"--point", "x"}, -1, true},
		{[]string{"a", "--", "-b"}, []string{"a", "-b"}, -1, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		point := fs.Int("point", -1, "")
		asJSON := fs.Bool("json", false, "")
		got, err := Parse(fs, c.args)
		require.NoError(t, err, c.args)
		require.Equal(t, c.positional, got, c.args)
		require.Equal(t, c.point, *point, c.args)
		require.Equal(t, c.json, *asJSON, c.args)
	}
}

func testProgram(out *bytes.Buffer, ran *[]string) *Program {
	return &Program{Name: "prog", About: "prog does things.", Stdout: out, Commands: []Command{
		{Name: "one", Args: "NAME", Summary: "the first", Setup: func(fs *flag.FlagSet) Action {
			n := fs.Int("count", 1, "how many")
			return func(ctx context.Context, args []string) error {
				if len(args) != 1 {
					return Usagef("", "one NAME needed, got %d", len(args))
				}
				*ran = append(*ran, fmt.Sprintf("one %s %d", args[0], *n))
				return nil
			}
		}},
		{Name: "two", Summary: "the second", Setup: func(fs *flag.FlagSet) Action {
			fs.Bool("loud", false, "say it loudly")
			return func(ctx context.Context, args []string) error { return &ExitError{Code: ExitAttention} }
		}},
	}}
}

func TestProgramHelpAndErrors(t *testing.T) {
	var out bytes.Buffer
	var ran []string
	p := testProgram(&out, &ran)
	ctx := context.Background()
	for _, help := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		out.Reset()
		require.NoError(t, p.Run(ctx, help))
		require.Contains(t, out.String(), "usage: prog COMMAND")
		require.Contains(t, out.String(), "one NAME")
	}
	for _, help := range [][]string{{"one", "-h"}, {"one", "x", "--help"}, {"help", "one"}} {
		out.Reset()
		require.NoError(t, p.Run(ctx, help))
		require.Contains(t, out.String(), "usage: prog one [flags] NAME")
		require.Contains(t, out.String(), "--count")
		require.NotContains(t, out.String(), "--loud", "only the command's own flags")
	}
	require.Empty(t, ran)

	require.NoError(t, p.Run(ctx, []string{"one", "x", "--count", "4"}))
	require.Equal(t, []string{"one x 4"}, ran)

	err := p.Run(ctx, []string{"one"})
	require.Equal(t, ExitUsage, Code(err))
	require.Equal(t, "prog: one: one NAME needed, got 0\nrun \"prog one -h\" for its usage", Message("prog", err))
	err = p.Run(ctx, []string{"one", "x", "--bogus"})
	require.Equal(t, ExitUsage, Code(err))
	require.Contains(t, Message("prog", err), "prog: one: flag provided but not defined: -bogus")
	err = p.Run(ctx, []string{"three"})
	require.Equal(t, ExitUsage, Code(err))
	require.Contains(t, Message("prog", err), `unknown command "three"`)
	require.Equal(t, ExitUsage, Code(p.Run(ctx, nil)))

	err = p.Run(ctx, []string{"two"})
	require.Equal(t, ExitAttention, Code(err))
	require.Empty(t, Message("prog", err))
}

func TestMessageHasOnePrefix(t *testing.T) {
	require.Equal(t, "aipimage: no full image", Message("aipimage", errors.New("aipimage: no full image")))
	require.Equal(t, "standby: esx: login failed", Message("standby", fmt.Errorf("esx: login failed")))
	require.Equal(t, ExitFailure, Code(errors.New("x")))
	require.Equal(t, 143, SignalCode(syscall.SIGTERM))
	require.Equal(t, 130, SignalCode(os.Interrupt))
}

func TestMainPrintsOnceAndExits(t *testing.T) {
	var stderr bytes.Buffer
	code := main("prog", func(ctx context.Context, args []string) error {
		return fmt.Errorf("prog: %s is missing", strings.Join(args, " "))
	}, []string{"/x"}, &stderr)
	require.Equal(t, ExitFailure, code)
	require.Equal(t, "prog: /x is missing\n", stderr.String())
}
