package lvm

import (
	"fmt"
	"strconv"
	"strings"
)

// The metadata text is written in LVM2's configuration language:
//
//	name = value          value: "string", 'string', integer, float, [ list ]
//	name { ... }          a section holding more of the same
//	# comment             to the end of the line
//
// Lists hold strings and numbers, commas between them optional. This is
// a small recursive-descent parser for it, bounded in nesting depth.

const maxDepth = 32

type valueKind int

const (
	kindString valueKind = iota
	kindInt
	kindFloat
	kindList
)

type cfgValue struct {
	kind valueKind
	s    string
	i    int64
	f    float64
	list []cfgValue
}

type cfgSection struct {
	name     string
	keys     map[string]cfgValue
	sections []*cfgSection
}

func (s *cfgSection) section(name string) *cfgSection {
	for _, c := range s.sections {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (s *cfgSection) str(key string) (string, bool) {
	v, ok := s.keys[key]
	if !ok || v.kind != kindString {
		return "", false
	}
	return v.s, true
}

func (s *cfgSection) int(key string) (int64, bool) {
	v, ok := s.keys[key]
	if !ok || v.kind != kindInt {
		return 0, false
	}
	return v.i, true
}

func (s *cfgSection) strList(key string) []string {
	v, ok := s.keys[key]
	if !ok || v.kind != kindList {
		return nil
	}
	var out []string
	for _, e := range v.list {
		if e.kind == kindString {
			out = append(out, e.s)
		}
	}
	return out
}

type cfgParser struct {
	b    []byte
	p    int
	line int
}

func (c *cfgParser) errf(format string, a ...any) error {
	return fmt.Errorf("%w: metadata line %d: %s", ErrCorrupt, c.line, fmt.Sprintf(format, a...))
}

// skip passes whitespace and comments.
func (c *cfgParser) skip() {
	for c.p < len(c.b) {
		switch ch := c.b[c.p]; ch {
		case '\n':
			c.line++
			c.p++
		case ' ', '\t', '\r', '\f', '\v':
			c.p++
		case '#':
			for c.p < len(c.b) && c.b[c.p] != '\n' {
				c.p++
			}
		default:
			return
		}
	}
}

func isDelim(ch byte) bool {
	switch ch {
	case ' ', '\t', '\r', '\n', '\f', '\v', '{', '}', '[', ']', '=', ',', '"', '\'', '#':
		return true
	}
	return false
}

func (c *cfgParser) word() string {
	s := c.p
	for c.p < len(c.b) && !isDelim(c.b[c.p]) {
		c.p++
	}
	return string(c.b[s:c.p])
}

// parseConfig parses a whole metadata text into its top-level section.
func parseConfig(b []byte) (*cfgSection, error) {
	c := &cfgParser{b: b, line: 1}
	root := &cfgSection{keys: map[string]cfgValue{}}
	if err := c.items(root, 0); err != nil {
		return nil, err
	}
	if c.p < len(c.b) {
		return nil, c.errf("unexpected %q", c.b[c.p])
	}
	return root, nil
}

// items parses name = value and name { } entries into s until '}' or
// the end of the text.
func (c *cfgParser) items(s *cfgSection, depth int) error {
	for {
		c.skip()
		if c.p >= len(c.b) || c.b[c.p] == '}' {
			return nil
		}
		name := c.word()
		if name == "" {
			return c.errf("expected a name, found %q", c.b[c.p])
		}
		c.skip()
		if c.p >= len(c.b) {
			return c.errf("%s: unexpected end", name)
		}
		switch c.b[c.p] {
		case '{':
			if depth >= maxDepth {
				return c.errf("sections nested too deep")
			}
			c.p++
			sub := &cfgSection{name: name, keys: map[string]cfgValue{}}
			if err := c.items(sub, depth+1); err != nil {
				return err
			}
			if c.p >= len(c.b) {
				return c.errf("%s: unterminated section", name)
			}
			c.p++ // '}'
			s.sections = append(s.sections, sub)
		case '=':
			c.p++
			c.skip()
			v, err := c.value(true)
			if err != nil {
				return err
			}
			s.keys[name] = v
		default:
			return c.errf("%s: expected '=' or '{', found %q", name, c.b[c.p])
		}
	}
}

// value parses a scalar, or a list when allowList.
func (c *cfgParser) value(allowList bool) (cfgValue, error) {
	if c.p >= len(c.b) {
		return cfgValue{}, c.errf("missing value")
	}
	switch ch := c.b[c.p]; ch {
	case '[':
		if !allowList {
			return cfgValue{}, c.errf("nested list")
		}
		c.p++
		v := cfgValue{kind: kindList}
		for {
			c.skip()
			if c.p >= len(c.b) {
				return cfgValue{}, c.errf("unterminated list")
			}
			if c.b[c.p] == ']' {
				c.p++
				return v, nil
			}
			e, err := c.value(false)
			if err != nil {
				return cfgValue{}, err
			}
			v.list = append(v.list, e)
			c.skip()
			if c.p < len(c.b) && c.b[c.p] == ',' {
				c.p++
			}
		}
	case '"', '\'':
		c.p++
		var sb strings.Builder
		for {
			if c.p >= len(c.b) {
				return cfgValue{}, c.errf("unterminated string")
			}
			x := c.b[c.p]
			c.p++
			if x == ch {
				return cfgValue{kind: kindString, s: sb.String()}, nil
			}
			if x == '\n' {
				c.line++
			}
			if x == '\\' && ch == '"' && c.p < len(c.b) {
				x = c.b[c.p]
				c.p++
			}
			sb.WriteByte(x)
		}
	default:
		w := c.word()
		if w == "" {
			return cfgValue{}, c.errf("unexpected %q", ch)
		}
		if strings.IndexByte(w, '_') >= 0 {
			return cfgValue{kind: kindString, s: w}, nil
		}
		if i, err := strconv.ParseInt(w, 0, 64); err == nil {
			return cfgValue{kind: kindInt, i: i}, nil
		}
		if f, err := strconv.ParseFloat(w, 64); err == nil {
			return cfgValue{kind: kindFloat, f: f}, nil
		}
		// LVM's own parser accepts a few bare words; keep them as strings.
		return cfgValue{kind: kindString, s: w}, nil
	}
}
