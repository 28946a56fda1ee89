package esx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Transport moves files between the caller and a datastore. Paths are
// relative to the datastore root ("vm/vm-000001.vmdk").
type Transport interface {
	// Upload writes f to path, replacing any file there.
	Upload(ctx context.Context, ds *object.Datastore, path string, f File) error
	// Download streams the file at path and reports its size (-1 when
	// unknown).
	Download(ctx context.Context, ds *object.Datastore, path string) (io.ReadCloser, int64, error)
	// Delete removes the file at path; a missing file is not an error.
	Delete(ctx context.Context, ds *object.Datastore, path string) error
}

// RangeDownloader is an optional Transport capability: download length
// bytes from offset.
type RangeDownloader interface {
	DownloadRange(ctx context.Context, ds *object.Datastore, path string, offset, length int64) (io.ReadCloser, error)
}

// DatastoreHTTP is the default Transport: the datastore's HTTP "/folder"
// file access (what govc datastore.upload and datastore.download use).
type DatastoreHTTP struct {
	// TempDir spools uploads of unknown size; empty means the system's
	// temporary folder.
	TempDir string
}

var _ RangeDownloader = DatastoreHTTP{}

// Upload implements Transport. A file of unknown size (-1) is first
// spooled to a temporary file: the upload is sent with its length, as
// ESXi's file server may refuse chunked requests.
func (d DatastoreHTTP) Upload(ctx context.Context, ds *object.Datastore, path string, f File) error {
	if f.Open == nil {
		return fmt.Errorf("uploading %s: no content", f.Name)
	}
	r, err := f.Open()
	if err != nil {
		return fmt.Errorf("opening %s: %w", f.Name, err)
	}
	defer r.Close()
	size := f.Size
	if size < 0 {
		tmp, err := os.CreateTemp(d.TempDir, "esx-upload-*")
		if err != nil {
			return fmt.Errorf("spooling %s: %w", f.Name, err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if size, err = io.Copy(tmp, r); err != nil {
			return fmt.Errorf("spooling %s: %w", f.Name, err)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("spooling %s: %w", f.Name, err)
		}
		r = tmp
	}
	p := soap.DefaultUpload
	p.ContentLength = size
	if err := ds.Upload(ctx, r, path, &p); err != nil {
		return fmt.Errorf("uploading %s to %s: %w", f.Name, ds.Path(path), err)
	}
	return nil
}

// Download implements Transport.
func (DatastoreHTTP) Download(ctx context.Context, ds *object.Datastore, path string) (io.ReadCloser, int64, error) {
	p := soap.DefaultDownload
	rc, n, err := ds.Download(ctx, path, &p)
	if err != nil {
		return nil, 0, fmt.Errorf("downloading %s: %w", ds.Path(path), err)
	}
	return rc, n, nil
}

// DownloadRange implements RangeDownloader with an HTTP Range request. A
// server that ignores the range gets its answer cut to length.
func (DatastoreHTTP) DownloadRange(ctx context.Context, ds *object.Datastore, path string, offset, length int64) (io.ReadCloser, error) {
	p := soap.DefaultDownload
	p.Headers = map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)}
	u, ticket, err := ds.ServiceTicket(ctx, path, p.Method)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", ds.Path(path), err)
	}
	if ticket != nil {
		p.Ticket, p.Close = ticket, true
	}
	res, err := ds.Client().DownloadRequest(ctx, u, &p)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", ds.Path(path), err)
	}
	switch res.StatusCode {
	case http.StatusPartialContent:
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(res.Body, length), res.Body}, nil
	case http.StatusOK: // range ignored: skip to offset
		if _, err := io.CopyN(io.Discard, res.Body, offset); err != nil {
			res.Body.Close()
			return nil, fmt.Errorf("downloading %s: %w", ds.Path(path), err)
		}
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(res.Body, length), res.Body}, nil
	default:
		res.Body.Close()
		return nil, fmt.Errorf("downloading %s: HTTP %s", ds.Path(path), res.Status)
	}
}

// Delete implements Transport with FileManager.DeleteDatastoreFile.
func (DatastoreHTTP) Delete(ctx context.Context, ds *object.Datastore, path string) error {
	return deleteFile(ctx, ds, path)
}

// deleteFile deletes a datastore file; a missing file is not an error.
func deleteFile(ctx context.Context, ds *object.Datastore, path string) error {
	fm := ds.NewFileManager(nil, true)
	err := fm.DeleteFile(ctx, path)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting %s: %w", ds.Path(path), err)
	}
	return nil
}

// isNotFound tells whether err reports a missing file or object.
func isNotFound(err error) bool {
	return fault.Is(err, &types.FileNotFound{}) || fault.Is(err, &types.ManagedObjectNotFound{}) ||
		errors.Is(err, os.ErrNotExist)
}
