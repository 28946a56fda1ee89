package aipimage

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// WriterOptions configures writing an image file. The zero value writes an
// unencrypted file with 64 KiB blocks, compressing on every CPU.
type WriterOptions struct {
	// BlockSize is a power of two from 4 KiB to 4 MiB; 0 means 64 KiB.
	// Incremental images always use their parent's block size.
	BlockSize int
	// Passphrase, when set, encrypts every block with AES-256-GCM.
	Passphrase []byte
	// ScryptN is the scrypt cost for a new chain's key; 0 means 32768.
	// Incrementals reuse their parent's parameters.
	ScryptN int
	// Workers bounds parallel compression; 0 means GOMAXPROCS.
	Workers int
	// Time is the point's time; zero means now.
	Time time.Time
	// SetID names the set of a new full image; empty means a new random id.
	SetID string
	// Sequence is a full image's sequence number: 0 starts a set; a full
	// image that starts a new chain in an existing set (SetID) takes the
	// sequence after the set's newest point, as WriteFullAfter does.
	// Incrementals always take their parent's + 1.
	Sequence int
	// Resized tells WriteIncremental and WriteIncrementalAfter that disks
	// may differ in size from the parent point's, because they were grown
	// or shrunk: the new file takes each disk's new size and records the
	// resize. Without it a size that differs fails with a *ResizeError.
	// (The block-level writer says so with NewResizedWriter.)
	Resized bool
	// Progress, when set, is called from the writing goroutine as blocks
	// are read.
	Progress func(WriteProgress)
}

// WriteProgress reports how much of a disk WriteFull or WriteIncremental
// has read.
type WriteProgress struct {
	Disk        int
	Done, Total int64 // bytes to examine on this disk
}

// Writer writes one image file block by block, in ascending block order per
// disk and disks in ascending order. Blocks are compressed (and encrypted)
// in parallel and written in order. Nothing appears at the target path
// until Close succeeds: the data goes to path+".partial", which Abort or a
// failed Close removes.
type Writer struct {
	info      PointInfo
	path      string
	tmp       string
	f         *os.File
	keys      *keyring
	full      bool
	workers   int
	headerCRC uint32

	// Producer side (WriteBlock).
	lastDisk  int
	lastBlock int64
	jobs      chan *job
	ordered   chan *job
	wg        sync.WaitGroup
	closed    bool

	// Consumer side (the writing goroutine).
	bw       *bufio.Writer
	sum      hash.Hash
	offset   int64
	page     []indexEntry
	pageDisk int
	dir      []pageRef
	count    int64
	stored   int64

	errMu sync.Mutex
	err   error
}

type job struct {
	disk  int
	block int64
	raw   []byte
	out   []byte
	flags uint16
	err   error
	done  chan struct{}
}

// NewFullWriter starts a full image of machine with the given disks.
func NewFullWriter(path string, machine Machine, disks []DiskInfo, opts *WriterOptions) (*Writer, error) {
	if opts == nil {
		opts = &WriterOptions{}
	}
	if _, err := ParseFirmware(string(machine.Firmware)); err != nil {
		return nil, err
	}
	info := PointInfo{
		SetID: opts.SetID, PointID: NewID(), Sequence: opts.Sequence, Machine: machine,
		Disks: append([]DiskInfo(nil), disks...), BlockSize: opts.BlockSize,
	}
	if info.SetID == "" {
		if opts.Sequence != 0 {
			return nil, invalidf("a full image with sequence %d continues a set: name it in SetID", opts.Sequence)
		}
		info.SetID = NewID()
	}
	if info.BlockSize == 0 {
		info.BlockSize = DefaultBlockSize
	}
	return newWriter(path, info, nil, opts)
}

// NewIncrementalWriter starts an incremental image whose parent is the
// point described by parent (as returned by a writer or read from a set).
// An encrypted parent's key parameters are reused; its passphrase must be
// given again in opts.
func NewIncrementalWriter(path string, parent PointInfo, opts *WriterOptions) (*Writer, error) {
	return newIncrementalWriter(path, parent, parent.Disks, opts)
}

// NewResizedWriter starts an incremental image on top of parent whose
// disks were resized since: disks gives every disk's new description, one
// for one with the parent's, with the parent's sector sizes. The file
// records which disks changed size and from what (PointInfo.Resized).
// Blocks of a disk past its old end, and its last block when that changed
// length, read as zero unless written.
func NewResizedWriter(path string, parent PointInfo, disks []DiskInfo, opts *WriterOptions) (*Writer, error) {
	if len(disks) != len(parent.Disks) {
		return nil, invalidf("%d disks for a parent with %d: a resize keeps the number of disks", len(disks), len(parent.Disks))
	}
	for d := range disks {
		if disks[d].SectorSize != parent.Disks[d].SectorSize {
			return nil, invalidf("disk %d: sector size %d, the parent's is %d", d, disks[d].SectorSize, parent.Disks[d].SectorSize)
		}
	}
	return newIncrementalWriter(path, parent, disks, opts)
}

func newIncrementalWriter(path string, parent PointInfo, disks []DiskInfo, opts *WriterOptions) (*Writer, error) {
	if opts == nil {
		opts = &WriterOptions{}
	}
	if err := parent.validate(); err != nil {
		return nil, invalidf("parent: %v", err)
	}
	if (parent.Encryption != nil) != (len(opts.Passphrase) > 0) {
		return nil, invalidf("an incremental must be encrypted exactly when its parent is")
	}
	info := PointInfo{
		SetID: parent.SetID, PointID: NewID(), ParentID: parent.PointID, Sequence: parent.Sequence + 1,
		Machine: parent.Machine, Disks: append([]DiskInfo(nil), disks...), BlockSize: parent.BlockSize,
	}
	for d := range disks {
		if disks[d].Size != parent.Disks[d].Size {
			info.Resized = append(info.Resized, DiskResize{Disk: d, From: parent.Disks[d].Size})
		}
	}
	if parent.Encryption != nil {
		keys := &keyring{passphrase: opts.Passphrase}
		if _, err := keys.unlock(&parent); err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
	}
	return newWriter(path, info, parent.Encryption, opts)
}

func newWriter(path string, info PointInfo, parentEnc *Encryption, opts *WriterOptions) (*Writer, error) {
	info.Time = opts.Time
	if info.Time.IsZero() {
		info.Time = time.Now()
	}
	info.Time = info.Time.UTC()
	w := &Writer{path: path, tmp: path + ".partial", full: info.Full(), lastDisk: -1, pageDisk: -1}
	var enc blockEncoder
	if len(opts.Passphrase) > 0 {
		info.Encryption = newEncryption(parentEnc, opts.ScryptN)
		w.keys = &keyring{passphrase: opts.Passphrase}
		setKey, err := w.keys.setKey(info.Encryption)
		if err != nil {
			return nil, err
		}
		if enc.aead, info.Encryption.KeyCheck, err = fileCipher(setKey, info.PointID); err != nil {
			return nil, err
		}
		enc.point = idBytes(info.PointID)
	}
	if err := info.validate(); err != nil {
		return nil, invalidf("%v", err)
	}
	header, err := encodeHeader(&info)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, invalidf("%s already exists", path)
	}
	f, err := os.OpenFile(w.tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, invalidf("%s exists: another writer is at work on %s, or one crashed (then remove it)", w.tmp, path)
	}
	if err != nil {
		return nil, err
	}
	w.f, w.info, w.headerCRC = f, info, le.Uint32(header[20:])
	w.info.File = path
	w.sum = sha256.New()
	w.bw = bufio.NewWriterSize(io.MultiWriter(f, w.sum), 1<<20)
	if _, err := w.bw.Write(header); err != nil {
		w.Abort()
		return nil, err
	}
	w.offset = int64(len(header))

	w.workers = opts.Workers
	if w.workers <= 0 {
		w.workers = runtime.GOMAXPROCS(0)
	}
	w.jobs = make(chan *job, w.workers)
	w.ordered = make(chan *job, 2*w.workers)
	for range w.workers {
		e := enc // each worker owns its compressor state
		w.wg.Go(func() {
			for j := range w.jobs {
				j.flags, j.out, j.err = e.encode(j.disk, j.block, j.raw, j.out)
				close(j.done)
			}
		})
	}
	w.wg.Go(w.drain)
	return w, nil
}

// Info describes the point being written. Its File is the final path.
func (w *Writer) Info() PointInfo { return w.info }

var rawPool = sync.Pool{New: func() any { return new([]byte) }}

// WriteBlock queues block b of disk d. data must be the block's full
// length (shorter only for a disk's last block); it is copied. Blocks that
// are all zero are dropped from full images and recorded as zero in
// incrementals.
func (w *Writer) WriteBlock(disk int, b int64, data []byte) error {
	if w.closed {
		return invalidf("write after Close or Abort")
	}
	if err := w.firstErr(); err != nil {
		return err
	}
	if disk < 0 || disk >= len(w.info.Disks) || b < 0 || b >= w.info.blocks(disk) {
		return invalidf("disk %d block %d outside the disks", disk, b)
	}
	if disk < w.lastDisk || (disk == w.lastDisk && b <= w.lastBlock) {
		return invalidf("disk %d block %d written out of order", disk, b)
	}
	if len(data) != w.info.blockLen(disk, b) {
		return invalidf("disk %d block %d: %d bytes, want %d", disk, b, len(data), w.info.blockLen(disk, b))
	}
	w.lastDisk, w.lastBlock = disk, b
	rp := rawPool.Get().(*[]byte)
	*rp = append((*rp)[:0], data...)
	op := rawPool.Get().(*[]byte)
	j := &job{disk: disk, block: b, raw: *rp, out: *op, done: make(chan struct{})}
	w.ordered <- j
	w.jobs <- j
	return nil
}

func (w *Writer) setErr(err error) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *Writer) firstErr() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// drain writes finished blocks in submission order.
func (w *Writer) drain() {
	for j := range w.ordered {
		<-j.done
		if w.firstErr() == nil {
			if j.err != nil {
				w.setErr(j.err)
			} else if err := w.writeRecord(j); err != nil {
				w.setErr(err)
			}
		}
		raw, out := j.raw, j.out
		rawPool.Put(&raw)
		rawPool.Put(&out)
	}
}

func (w *Writer) writeRecord(j *job) error {
	if j.flags&flagZero != 0 && w.full {
		return nil // a full image simply omits zero blocks
	}
	if j.disk != w.pageDisk || len(w.page) == entriesPerPage {
		if err := w.flushPage(); err != nil {
			return err
		}
		w.pageDisk = j.disk
	}
	e := indexEntry{block: j.block, flags: j.flags}
	if j.flags&flagZero == 0 {
		e.offset, e.length, e.crc = w.offset, uint32(len(j.out)), crc(j.out)
		var hdr [blockHeaderLen]byte
		encodeBlockHeader(hdr[:], j.disk, e)
		if _, err := w.bw.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := w.bw.Write(j.out); err != nil {
			return err
		}
		w.offset += blockHeaderLen + int64(len(j.out))
		w.stored += int64(len(j.out))
	}
	w.page = append(w.page, e)
	w.count++
	return nil
}

// flushPage writes the pending index page inline, between data blocks; the
// directory at the end points to it.
func (w *Writer) flushPage() error {
	if len(w.page) == 0 {
		return nil
	}
	b := encodePage(w.pageDisk, w.page)
	w.dir = append(w.dir, pageRef{
		disk: w.pageDisk, count: len(w.page), offset: w.offset,
		first: w.page[0].block, last: w.page[len(w.page)-1].block,
	})
	if _, err := w.bw.Write(b); err != nil {
		return err
	}
	w.offset += int64(len(b))
	w.page = w.page[:0]
	return nil
}

// stop ends the pipeline and waits for it.
func (w *Writer) stop() {
	if w.closed {
		return
	}
	w.closed = true
	close(w.ordered)
	close(w.jobs)
	w.wg.Wait()
}

// Close writes the index directory and the trailer, syncs the file and
// moves it to its final path. On error nothing remains at either path.
func (w *Writer) Close() (err error) {
	if w.closed {
		return invalidf("Close after Close or Abort")
	}
	w.stop()
	defer func() {
		if err != nil {
			w.f.Close()
			os.Remove(w.tmp)
		}
	}()
	if err := w.firstErr(); err != nil {
		return err
	}
	if err := w.flushPage(); err != nil {
		return err
	}
	dir := encodeDirectory(w.dir)
	dirOffset := w.offset
	if _, err := w.bw.Write(dir); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	t := trailer{
		headerCRC: w.headerCRC, dirOffset: dirOffset, dirLen: int64(len(dir)), dirCRC: crc(dir),
		blockCount: w.count, storedLen: w.stored,
	}
	copy(t.sha256[:], w.sum.Sum(nil))
	if _, err := w.f.Write(encodeTrailer(t)); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(w.tmp, w.path); err != nil {
		return err
	}
	syncDir(filepath.Dir(w.path))
	return nil
}

// Abort discards the file being written.
func (w *Writer) Abort() {
	w.stop()
	w.f.Close()
	os.Remove(w.tmp)
}

// syncDir makes a rename durable; failure only weakens durability, so it
// is not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
