// Package hosttext bounds text that another machine wrote before it
// reaches logs, state files and terminals: fault messages and task errors
// from a hypervisor, strings a guest reports through it. Such text can be
// of any length and hold terminal escape sequences or invalid UTF-8.
package hosttext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clip returns s cut to at most max bytes (on a character boundary, "…"
// marking the cut), with invalid UTF-8 and control characters other than
// tab replaced by U+FFFD, so that what it returns is one printable line.
// It reads no more of s than it keeps.
func Clip(s string, max int) string {
	if max <= 0 {
		return ""
	}
	const cut = "…"
	var b strings.Builder
	for _, r := range s {
		if unprintable(r) {
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) <= max {
			b.WriteRune(r)
			continue
		}
		kept := b.String()
		if max < len(cut) {
			return kept
		}
		for len(kept)+len(cut) > max {
			_, size := utf8.DecodeLastRuneInString(kept)
			kept = kept[:len(kept)-size]
		}
		return kept + cut
	}
	return b.String()
}

// unprintable reports whether r is replaced: a byte of invalid UTF-8
// (which ranging over a string yields as RuneError) or a control
// character that could move a terminal's cursor or end a log line.
func unprintable(r rune) bool {
	return r == utf8.RuneError || (unicode.IsControl(r) && r != '\t')
}

// Error is an error another machine reported, whose text is clipped to
// Max bytes (Clip); errors.Is and errors.As see the original through
// Unwrap.
type Error struct {
	Err error
	Max int
}

func (e *Error) Error() string { return Clip(e.Err.Error(), e.Max) }
func (e *Error) Unwrap() error { return e.Err }

// Wrap returns err with its text clipped to max bytes, or nil for nil.
func Wrap(err error, max int) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Max: max}
}
