package aipimage

import (
	"fmt"
	"io"
	"runtime/debug"
)

// mappedFile is an image file mapped into memory.
type mappedFile struct {
	data  []byte
	unmap func() error
}

func (m *mappedFile) ReadAt(p []byte, off int64) (n int, err error) {
	if off < 0 || off > int64(len(m.data)) {
		return 0, io.EOF
	}
	defer faultGuard()()
	defer catchFault(&err)
	n = copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// slice returns n bytes at off without copying.
func (m *mappedFile) slice(off int64, n int) ([]byte, bool) {
	if off < 0 || n < 0 || off > int64(len(m.data))-int64(n) {
		return nil, false
	}
	return m.data[off : off+int64(n)], true
}

// catchFault turns a fault on mapped memory (the file shrank underneath
// us, or its storage failed) into an error instead of a crash. It must be
// deferred in the function that touches the mapping, which must have
// called debug.SetPanicOnFault(true).
func catchFault(err *error) {
	if r := recover(); r != nil {
		if re, ok := r.(interface{ Addr() uintptr }); ok {
			*err = fmt.Errorf("%w: fault reading mapped image at %#x", ErrCorrupt, re.Addr())
			return
		}
		panic(r)
	}
}

// faultGuard enables fault-to-panic for the calling goroutine and returns
// the function that restores the previous setting.
func faultGuard() func() {
	old := debug.SetPanicOnFault(true)
	return func() { debug.SetPanicOnFault(old) }
}
