package esx

import (
	"fmt"
	"io"
	"net/http"
)

// maxSOAPAnswer bounds one SOAP answer from the host, read into memory
// and decoded whole by govmomi: the largest real answers (property
// collector results over an inventory of thousands of VMs) are tens of
// MB, so a larger one is a broken or hostile host, not an inventory.
const maxSOAPAnswer = 256 << 20

// boundedSOAP caps the body of the answers to SOAP calls (POSTs to the
// API's path); datastore transfers, which are GETs and PUTs of disk-sized
// files, pass untouched.
type boundedSOAP struct {
	next  http.RoundTripper
	path  string // the API's URL path, /sdk
	limit int64
}

func (b boundedSOAP) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := b.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost || req.URL.Path != b.path {
		return res, err
	}
	res.Body = &cappedBody{ReadCloser: res.Body, left: b.limit, limit: b.limit}
	return res, nil
}

// cappedBody fails a read that goes past limit bytes.
type cappedBody struct {
	io.ReadCloser
	left, limit int64
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Tell a body that ends exactly at the limit from a longer one.
		var one [1]byte
		if n, err := c.ReadCloser.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, fmt.Errorf("%w: a SOAP answer larger than %d bytes", ErrImplausible, c.limit)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}
