package esxsim

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/simulator"

	"github.com/standbykit/standbykit/vmdk"
)

// nfcStore keeps the disks of NFC imports (ImportVApp): vcsim discards
// upload bodies; this stores each one as ESXi does, converting the
// streamOptimized stream into a thin vmfs disk (a descriptor and its
// -flat extent, sparse on the local file system), then lets vcsim record
// the transfer.
type nfcStore struct{ sim *Simulator }

func (n *nfcStore) serve(w http.ResponseWriter, r *http.Request) {
	// /nfc/<lease>/<target file name>
	name := path.Base(r.URL.Path)
	target, err := n.target(name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".nfc-*")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(tmp.Name())
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	body := r.Body
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(body, tmp), body}
	simulator.ServeNFC(rec, r)
	if err := tmp.Close(); err != nil || rec.status != http.StatusOK {
		return
	}
	if err := r.Context().Err(); err != nil {
		return
	}
	n.sim.disks.Lock()
	defer n.sim.disks.Unlock()
	if err := convertStream(tmp.Name(), target); err != nil {
		// The client has its answer already; a real host would fail the
		// lease. Leave no half disk: the descriptor stays as the import
		// created it (empty), which no reader accepts.
		n.sim.logf("esxsim: converting the NFC upload of %s: %v", name, err)
	}
}

// target finds the one disk file of that name the import created:
// <dir>/<vm folder>/<name>.
func (n *nfcStore) target(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", errors.New("invalid NFC target " + url.PathEscape(name))
	}
	m, err := filepath.Glob(filepath.Join(n.sim.Dir, "*", name))
	if err != nil || len(m) != 1 {
		return "", fmt.Errorf("NFC target %s: %d candidates", name, len(m))
	}
	return m[0], nil
}

// convertStream turns the streamOptimized file at src into a vmfs disk:
// the descriptor at target and its extent beside it (name-flat.vmdk),
// written only where the stream has grains.
func convertStream(src, target string) error {
	chain, err := vmdk.OpenChain(os.DirFS(filepath.Dir(src)), filepath.Base(src))
	if err != nil {
		return err
	}
	defer chain.Close()
	if n := len(chain.Links()); n != 1 {
		return fmt.Errorf("an imported disk has %d links", n)
	}
	allocated, err := chain.Allocated(0)
	if err != nil {
		return err
	}
	size := chain.Size()
	flatName := vmdk.FlatName(filepath.Base(target))
	flat, err := os.Create(filepath.Join(filepath.Dir(target), flatName))
	if err != nil {
		return err
	}
	if err := copyRanges(flat, chain, allocated, true); err != nil {
		flat.Close()
		return err
	}
	if err := flat.Truncate(size); err != nil {
		flat.Close()
		return err
	}
	if err := flat.Close(); err != nil {
		return err
	}
	adapter := chain.Links()[0].Descriptor.Get("ddb.adapterType")
	desc := vmdk.BaseDescriptor(vmdk.CreateVMFS, vmdk.ExtentVMFS, flatName, size, adapter)
	return writeDescriptor(target, desc)
}

// copyRanges copies the bytes of src inside ranges to dst at the same
// offsets. With fresh, dst is a new sparse file and all-zero blocks are
// skipped.
func copyRanges(dst io.WriterAt, src io.ReaderAt, ranges []vmdk.Range, fresh bool) error {
	buf := make([]byte, 1<<20)
	for _, r := range ranges {
		for off := r.Off; off < r.End(); {
			n := min(int64(len(buf)), r.End()-off)
			if _, err := src.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("reading at %d: %w", off, err)
			}
			if !fresh || !allZero(buf[:n]) {
				if _, err := dst.WriteAt(buf[:n], off); err != nil {
					return err
				}
			}
			off += n
		}
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
