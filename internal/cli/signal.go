package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Stopped is the cause of the context Main cancels on a signal.
type Stopped struct{ Signal os.Signal }

func (s *Stopped) Error() string { return "stopped by " + signalName(s.Signal) }

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// SignalCode is the exit status of a program stopped by s: 128 + its
// number, as a shell reports a process killed by it (130 for SIGINT, 143
// for SIGTERM).
func SignalCode(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return ExitFailure
}

// Main runs run with the program's arguments and exits. The first SIGINT
// or SIGTERM cancels run's context, with a *Stopped cause: a long command
// stops at a safe step (undoing the step in flight) and returns; Main
// then exits with SignalCode. A second signal exits at once.
func Main(program string, run func(ctx context.Context, args []string) error) {
	os.Exit(main(program, run, os.Args[1:], os.Stderr))
}

func main(program string, run func(ctx context.Context, args []string) error, args []string, stderr io.Writer) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	got := make(chan os.Signal, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		var s os.Signal
		select {
		case s = <-sigs:
		case <-done:
			return
		}
		got <- s
		fmt.Fprintf(stderr, "%s: %s: stopping at a safe step (signal again to stop at once)\n", program, signalName(s))
		cancel(&Stopped{Signal: s})
		select {
		case s = <-sigs:
			fmt.Fprintf(stderr, "%s: %s: stopping now\n", program, signalName(s))
			os.Exit(SignalCode(s))
		case <-done:
		}
	}()
	err := run(ctx, args)
	select {
	case s := <-got:
		var stopped *Stopped
		if err != nil && !errors.As(err, &stopped) && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, Message(program, err))
		}
		fmt.Fprintf(stderr, "%s: stopped by %s\n", program, signalName(s))
		return SignalCode(s)
	default:
	}
	if msg := Message(program, err); msg != "" {
		fmt.Fprintln(stderr, msg)
	}
	return Code(err)
}
