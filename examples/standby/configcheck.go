package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// fieldLines maps each field a configuration file gives ("perHost",
// "tasks[0].vm.cpus") to its line.
type fieldLines map[string]int

// errorf is an error about the field at path, starting with its line
// ("12: ..."), for loadConfig to put the file name in front.
func (at fieldLines) errorf(path, format string, args ...any) error {
	return fmt.Errorf("%d: "+format, append([]any{at[path]}, args...)...)
}

// checkFields walks a JSON document along the Go type of v and refuses
// any object key that is not exactly the json name of a field (package
// json would ignore it, or match it regardless of case), and any key given
// twice. It returns the line of every field. Values are left to
// json.Unmarshal.
func checkFields(data []byte, v any) (fieldLines, error) {
	w := &fieldWalker{data: data, dec: json.NewDecoder(bytes.NewReader(data)), lines: fieldLines{}}
	if err := w.value(reflect.TypeOf(v).Elem(), ""); err != nil {
		return nil, err
	}
	return w.lines, nil
}

type fieldWalker struct {
	data  []byte
	dec   *json.Decoder
	lines fieldLines
}

func (w *fieldWalker) line() int { return 1 + bytes.Count(w.data[:w.dec.InputOffset()], []byte("\n")) }

func (w *fieldWalker) value(t reflect.Type, path string) error {
	tok, err := w.dec.Token()
	if err != nil {
		return jsonError(w.data, err)
	}
	if _, ok := w.lines[path]; !ok && path != "" {
		w.lines[path] = w.line() // an array element: where it starts
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch {
	case delim == '{' && t.Kind() == reflect.Struct:
		return w.object(t, path)
	case delim == '[' && t.Kind() == reflect.Slice:
		for i := 0; w.dec.More(); i++ {
			if err := w.value(t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := w.dec.Token()
		return jsonError(w.data, err)
	}
	// The wrong kind of value: skip it, json.Unmarshal names the problem.
	return w.skip(delim)
}

func (w *fieldWalker) object(t reflect.Type, path string) error {
	fields := jsonFields(t)
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return jsonError(w.data, err)
		}
		key := tok.(string)
		line := w.line()
		where := ""
		if path != "" {
			where = " in " + path
		}
		f, ok := fields[key]
		if !ok {
			return fmt.Errorf("%d: unknown field %q%s%s", line, key, where, suggest(key, fields))
		}
		if seen[key] {
			return fmt.Errorf("%d: field %q given twice%s", line, key, where)
		}
		seen[key] = true
		full := key
		if path != "" {
			full = path + "." + key
		}
		w.lines[full] = line
		if err := w.value(f, full); err != nil {
			return err
		}
	}
	_, err := w.dec.Token()
	return jsonError(w.data, err)
}

// skip reads past the rest of an object or array whose opening delimiter
// was read.
func (w *fieldWalker) skip(json.Delim) error {
	for depth := 1; depth > 0; {
		tok, err := w.dec.Token()
		if err != nil {
			return jsonError(w.data, err)
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

// jsonFields maps the json names of a struct's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// suggest names the known field closest to a misspelt one.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3 // at most two edits away
	for name := range fields {
		d := editDistance(strings.ToLower(key), strings.ToLower(name))
		if d < bestDist || d == bestDist && name < best {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// jsonError puts the line of a decoding error in front of it ("7: ...").
func jsonError(data []byte, err error) error {
	if err == nil {
		return nil
	}
	lineOf := func(off int64) int { return 1 + bytes.Count(data[:min(max(off, 0), int64(len(data)))], []byte("\n")) }
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%d: %s", lineOf(se.Offset), strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &te) && te.Field == "":
		return fmt.Errorf("%d: want a JSON object, got %s", lineOf(te.Offset), te.Value)
	case errors.As(err, &te):
		return fmt.Errorf("%d: %s: want %s, got %s", lineOf(te.Offset), te.Field, te.Type, te.Value)
	case len(bytes.TrimSpace(data)) == 0:
		return errors.New("1: the file is empty: want a JSON object")
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%d: the file ends in the middle of a value", lineOf(int64(len(data))))
	}
	return fmt.Errorf(" %w", err)
}
