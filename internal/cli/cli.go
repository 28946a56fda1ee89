// Package cli holds the conventions the example programs share: a table
// of commands with one flag set each, help on -h, --help and help (to
// standard output, exit status 0), flags before or after positional
// arguments, errors printed once with the program's name, documented exit
// statuses, and a stop at a safe step on SIGINT and SIGTERM.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Exit statuses of the example programs.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command failed; the error is on standard error
	ExitUsage   = 2 // the command line is wrong
	// ExitAttention: the command worked and found something that needs an
	// operator (`standby status`: a task failing or waiting for a
	// decision).
	ExitAttention = 3
	// A program stopped by a signal exits with 128 + its number: 130 for
	// SIGINT, 143 for SIGTERM (see Main).
)

// Action runs a command once its flags are parsed, with its positional
// arguments.
type Action func(ctx context.Context, args []string) error

// Command is one entry of a program's command table.
type Command struct {
	Name    string
	Args    string // the positional arguments, for the usage line: "TASK", "DIR|FILE"
	Summary string // one line
	// Setup declares the command's flags on fs and returns what runs
	// once they are parsed.
	Setup func(fs *flag.FlagSet) Action
}

// Program is a command-line program made of commands.
type Program struct {
	Name     string
	About    string // what the program does, one line
	Commands []Command
	Notes    string // printed after the command list: environment, files
	Stdout   io.Writer
}

// Run runs the command args[0] with the rest of args.
func (p *Program) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return Usagef("", "no command given (run %q for the list)", p.Name+" help")
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		p.Usage(p.Stdout)
		return nil
	case "help":
		if len(rest) == 0 {
			p.Usage(p.Stdout)
			return nil
		}
		c, err := p.find(rest[0])
		if err != nil {
			return err
		}
		fs := newFlagSet(p.Name + " " + c.Name)
		c.Setup(fs)
		p.commandUsage(p.Stdout, c, fs)
		return nil
	}
	c, err := p.find(name)
	if err != nil {
		return err
	}
	fs := newFlagSet(p.Name + " " + c.Name)
	action := c.Setup(fs)
	positional, err := Parse(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		p.commandUsage(p.Stdout, c, fs)
		return nil
	}
	if err != nil {
		return &UsageError{Command: fs.Name(), Err: err}
	}
	err = action(ctx, positional)
	var ue *UsageError
	if errors.As(err, &ue) && ue.Command == "" {
		ue.Command = fs.Name()
	}
	return err
}

func (p *Program) find(name string) (Command, error) {
	i := slices.IndexFunc(p.Commands, func(c Command) bool { return c.Name == name })
	if i < 0 {
		return Command{}, Usagef("", "unknown command %q (run %q for the list)", name, p.Name+" help")
	}
	return p.Commands[i], nil
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, help is printed by Run
	fs.Usage = func() {}
	return fs
}

// Usage prints the program's usage: its commands, one line each.
func (p *Program) Usage(w io.Writer) {
	if p.About != "" {
		fmt.Fprintf(w, "%s\n\n", p.About)
	}
	fmt.Fprintf(w, "usage: %s COMMAND [flags] [arguments]\n\ncommands:\n", p.Name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range p.Commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.Name, c.Args, c.Summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun %q or %q for a command's flags.\n", p.Name+" help COMMAND", p.Name+" COMMAND -h")
	if p.Notes != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(p.Notes))
	}
}

func (p *Program) commandUsage(w io.Writer, c Command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s %s", p.Name, c.Name)
	if hasFlags(fs) {
		fmt.Fprint(w, " [flags]")
	}
	if c.Args != "" {
		fmt.Fprint(w, " ", c.Args)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.Summary)
	PrintFlags(w, fs)
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// PrintFlags lists a flag set's flags under a "flags:" heading (nothing
// without flags). Flags are written with two dashes; one works too.
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	if !hasFlags(fs) {
		return
	}
	fmt.Fprintln(w, "\nflags (before or after the arguments):")
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && !strings.Contains(usage, "default") {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// Parse parses flags placed before, between or after the positional
// arguments ("standby failover web01 --point 3"), which package flag
// alone stops at, and returns the positional arguments. Everything after
// "--" is positional.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// UsageError is a wrong command line: Main prints it with a pointer to
// the command's help and exits with ExitUsage.
type UsageError struct {
	Command string // "standby status"
	Err     error
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError for command: "prog" or "prog cmd", whose
// help Main points to; empty in a command's Action means that command,
// elsewhere no pointer to help.
func Usagef(command, format string, args ...any) error {
	return &UsageError{Command: command, Err: fmt.Errorf(format, args...)}
}

// ExitError makes Main exit with Code, printing Err if it is not nil.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

// Code is the exit status for err.
func Code(err error) int {
	var ee *ExitError
	var ue *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue):
		return ExitUsage
	}
	return ExitFailure
}

// Message is the line Main prints for err: prefixed with the program's
// name once (an error that already starts with it is not prefixed
// again), and for a usage error, where to find the usage. It is empty for
// an ExitError without an error.
func Message(program string, err error) string {
	var ee *ExitError
	if err == nil || errors.As(err, &ee) && ee.Err == nil {
		return ""
	}
	msg := strings.TrimPrefix(err.Error(), program+": ")
	var ue *UsageError
	if errors.As(err, &ue) && ue.Command != "" {
		if ue.Command != program {
			msg = strings.TrimPrefix(ue.Command, program+" ") + ": " + msg
		}
		msg += fmt.Sprintf("\nrun %q for its usage", ue.Command+" -h")
	}
	return program + ": " + msg
}
