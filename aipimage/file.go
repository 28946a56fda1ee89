package aipimage

import (
	"container/list"
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/standbykit/standbykit/internal/extent"
)

// pageCacheSize bounds the decoded index pages a file keeps: 16 pages of
// 2048 entries cover 2 GiB of 64 KiB blocks in about 1 MiB of memory.
const pageCacheSize = 16

// File is one opened image file: its header, trailer and directory, with
// index pages loaded on demand. It is safe for concurrent use.
type File struct {
	info      PointInfo
	r         io.ReaderAt
	closer    io.Closer
	mapped    *mappedFile // nil when read with pread
	size      int64
	dataBegin int64
	trailer   trailer
	pages     [][]pageRef // per disk
	aead      cipher.AEAD
	pointID   []byte

	mu    sync.Mutex
	cache map[int64]*list.Element // page offset -> element holding *cachedPage
	lru   list.List
}

type cachedPage struct {
	offset  int64
	entries []indexEntry
}

// OpenOptions configures reading image files. The zero value reads
// unencrypted files.
type OpenOptions struct {
	// Passphrase unlocks encrypted files.
	Passphrase []byte
	// ReadWorkers bounds the goroutines one large ReadAt of a point
	// decodes with; 0 means GOMAXPROCS, 1 decodes in the caller.
	ReadWorkers int

	keys *keyring // shared across the files of a set
}

func (o *OpenOptions) keyring() *keyring {
	if o == nil {
		return &keyring{}
	}
	if o.keys == nil {
		o.keys = &keyring{passphrase: o.Passphrase}
	}
	return o.keys
}

// OpenFile opens one image file. Errors are *FileError values matching
// ErrIncomplete, ErrCorrupt, ErrNotImage, ErrUnsupported,
// ErrPassphraseRequired or ErrWrongPassphrase.
func OpenFile(path string, opts *OpenOptions) (*File, error) {
	img, err := openFile(path)
	if err != nil {
		return nil, err
	}
	if err := img.unlock(opts); err != nil {
		img.Close()
		return nil, &FileError{File: path, Err: err}
	}
	return img, nil
}

// openFile opens an image file without deriving its key.
func openFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	img, err := newFile(f, st.Size())
	if err != nil {
		f.Close()
		return nil, &FileError{File: path, Err: err}
	}
	img.closer = f
	if m := mapFile(f, st.Size()); m != nil {
		img.r, img.mapped = m, m
		img.closer = closers{m.unmap, f.Close}
	}
	img.info.File = path
	return img, nil
}

// NewFile reads an image from r, whose size is size. The caller keeps r
// open while the File is used.
func NewFile(r io.ReaderAt, size int64, opts *OpenOptions) (*File, error) {
	f, err := newFile(r, size)
	if err != nil {
		return nil, err
	}
	if err := f.unlock(opts); err != nil {
		return nil, err
	}
	return f, nil
}

// newFile checks the header, the trailer and the directory; the key of an
// encrypted file is derived later (unlock), once its parameters are known
// to be the set's.
func newFile(r io.ReaderAt, size int64) (*File, error) {
	var prefix [headerPrefixLen]byte
	n, err := r.ReadAt(prefix[:], 0)
	if err != nil && !(errors.Is(err, io.EOF) && n < len(prefix)) {
		return nil, err
	}
	h, err := decodeHeaderPrefix(prefix[:n])
	if err != nil {
		return nil, err
	}
	begin := dataStart(h.metaLen)
	if size < begin+trailerLen {
		return nil, incompletef("file of %d bytes ends before its first block", size)
	}
	meta := make([]byte, h.metaLen)
	if _, err := r.ReadAt(meta, headerPrefixLen); err != nil {
		return nil, err
	}
	info, err := decodeMeta(h, meta)
	if err != nil {
		return nil, err
	}
	var tb [trailerLen]byte
	if _, err := r.ReadAt(tb[:], size-trailerLen); err != nil {
		return nil, err
	}
	t, err := decodeTrailer(tb[:], size, h)
	if err != nil {
		return nil, err
	}
	dir := make([]byte, t.dirLen)
	if _, err := r.ReadAt(dir, t.dirOffset); err != nil {
		return nil, err
	}
	if crc(dir) != t.dirCRC {
		return nil, corruptf("directory checksum mismatch at offset %d", t.dirOffset)
	}
	refs, err := decodeDirectory(dir, info, begin, t.dirOffset)
	if err != nil {
		return nil, err
	}
	f := &File{
		info: *info, r: r, size: size, dataBegin: begin, trailer: t,
		pages: make([][]pageRef, len(info.Disks)), pointID: idBytes(info.PointID),
		cache: map[int64]*list.Element{},
	}
	for _, ref := range refs {
		f.pages[ref.disk] = append(f.pages[ref.disk], ref)
	}
	return f, nil
}

// unlock derives the block key of an encrypted file.
func (f *File) unlock(opts *OpenOptions) error {
	if f.info.Encryption == nil {
		return nil
	}
	aead, err := opts.keyring().unlock(&f.info)
	f.aead = aead
	return err
}

type closers []func() error

func (c closers) Close() error {
	var errs []error
	for _, f := range c {
		errs = append(errs, f())
	}
	return errors.Join(errs...)
}

// Info returns what the file says about its point.
func (f *File) Info() PointInfo { return f.info }

// Close releases the file.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// page returns the decoded entries of an index page, from the cache when
// possible.
func (f *File) page(ref pageRef) ([]indexEntry, error) {
	f.mu.Lock()
	if el, ok := f.cache[ref.offset]; ok {
		f.lru.MoveToFront(el)
		entries := el.Value.(*cachedPage).entries
		f.mu.Unlock()
		return entries, nil
	}
	f.mu.Unlock()

	buf := make([]byte, pageHeaderLen+ref.count*indexEntryLen)
	if _, err := f.r.ReadAt(buf, ref.offset); err != nil {
		return nil, fmt.Errorf("reading index page: %w", err)
	}
	entries, err := decodePage(buf, ref, &f.info, f.dataBegin, f.trailer.dirOffset)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.cache[ref.offset]; !ok {
		f.cache[ref.offset] = f.lru.PushFront(&cachedPage{ref.offset, entries})
		if f.lru.Len() > pageCacheSize {
			old := f.lru.Remove(f.lru.Back()).(*cachedPage)
			delete(f.cache, old.offset)
		}
	}
	return entries, nil
}

// lookup finds the entry of block b of disk d, if the file holds it.
func (f *File) lookup(disk int, b int64) (indexEntry, bool, error) {
	refs := f.pages[disk]
	i := sort.Search(len(refs), func(i int) bool { return refs[i].last >= b })
	if i == len(refs) || refs[i].first > b {
		return indexEntry{}, false, nil
	}
	entries, err := f.page(refs[i])
	if err != nil {
		return indexEntry{}, false, err
	}
	j := sort.Search(len(entries), func(j int) bool { return entries[j].block >= b })
	if j == len(entries) || entries[j].block != b {
		return indexEntry{}, false, nil
	}
	return entries[j], true, nil
}

var payloadPool = sync.Pool{New: func() any { return new([]byte) }}

// readBlock decodes the block of entry e of disk d into dst.
func (f *File) readBlock(dst []byte, disk int, e indexEntry) error {
	if e.flags&flagZero != 0 {
		clear(dst)
		return nil
	}
	bp := payloadPool.Get().(*[]byte)
	defer payloadPool.Put(bp)
	need := blockHeaderLen + int(e.length)
	if cap(*bp) < need {
		*bp = make([]byte, need)
	}
	buf := (*bp)[:need]
	if _, err := f.r.ReadAt(buf, e.offset); err != nil {
		return fmt.Errorf("reading disk %d block %d: %w", disk, e.block, err)
	}
	if err := checkBlockHeader(buf, disk, e); err != nil {
		return err
	}
	return decodeBlock(dst, buf[blockHeaderLen:], e, disk, f.aead, f.pointID)
}

// entries calls fn for every index entry of disk d in ascending order.
func (f *File) entries(disk int, fn func(indexEntry) error) error {
	for _, ref := range f.pages[disk] {
		entries, err := f.page(ref)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// Changed returns the byte ranges of disk d that this file holds: for an
// incremental, what changed since the parent point; for a full image, the
// blocks that are not all zero.
func (f *File) Changed(disk int) ([]Extent, error) {
	if disk < 0 || disk >= len(f.info.Disks) {
		return nil, invalidf("disk %d of %d", disk, len(f.info.Disks))
	}
	var s extent.Set
	bs := int64(f.info.BlockSize)
	err := f.entries(disk, func(e indexEntry) error {
		s.Add(e.block*bs, int64(f.info.blockLen(disk, e.block)))
		return nil
	})
	if err != nil {
		return nil, &FileError{File: f.info.File, Err: err}
	}
	return s.Extents(), nil
}

// VerifyProgress reports how far Verify has come.
type VerifyProgress struct {
	File        string
	Done, Total int64 // blocks
}

// Verify reads every block of the file, checks every checksum and
// authentication tag, and recomputes the whole-file digest stored in the
// trailer. progress may be nil.
func (f *File) Verify(ctx context.Context, progress func(VerifyProgress)) error {
	wrap := func(err error) error { return &FileError{File: f.info.File, Err: err} }
	var count int64
	for d := range f.info.Disks {
		for _, ref := range f.pages[d] {
			count += int64(ref.count)
		}
	}
	if count != f.trailer.blockCount {
		return wrap(corruptf("directory lists %d blocks, trailer %d", count, f.trailer.blockCount))
	}
	buf := make([]byte, f.info.BlockSize)
	var done int64
	for d := range f.info.Disks {
		err := f.entries(d, func(e indexEntry) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			// A zero block has no record: decodePage checked its entry, and
			// clearing up to 4 MiB per 32-byte entry would let a small file
			// cost terabytes of work.
			if e.flags&flagZero == 0 {
				if err := f.readBlock(buf[:f.info.blockLen(d, e.block)], d, e); err != nil {
					return err
				}
			}
			done++
			if progress != nil && done%256 == 0 {
				progress(VerifyProgress{f.info.File, done, count})
			}
			return nil
		})
		if err != nil {
			return wrap(err)
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f.r, 0, f.size-trailerLen)); err != nil {
		return wrap(err)
	}
	if string(h.Sum(nil)) != string(f.trailer.sha256[:]) {
		return wrap(corruptf("whole-file digest mismatch"))
	}
	if progress != nil {
		progress(VerifyProgress{f.info.File, done, count})
	}
	return nil
}
