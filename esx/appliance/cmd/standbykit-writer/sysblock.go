package main

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// blockDev is a whole disk as /sys/block tells it.
type blockDev struct {
	Name     string // sda, nvme0n1
	Dev      string // major:minor
	Size     int64  // bytes
	ReadOnly bool
}

func (d blockDev) String() string {
	return fmt.Sprintf("%s (%s)", d.Name, humanSize(d.Size))
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// listDisks returns the disks of a sysfs tree (the root of /sys): the
// entries of block/ that are whole disks of some hardware — they have a
// device link, which loop, ram, zram, md and dm devices do not —, are
// not hidden (the per-path devices of NVMe multipathing), not removable
// (CD-ROM drives, such as the appliance's own ISO's) and not empty.
// Partitions are never listed: they are subdirectories of their disk's.
func listDisks(sys fs.FS) ([]blockDev, error) {
	entries, err := fs.ReadDir(sys, "block")
	if err != nil {
		return nil, err
	}
	var disks []blockDev
	for _, e := range entries {
		name := e.Name()
		dir := "block/" + name
		if _, err := fs.Stat(sys, dir+"/device"); err != nil {
			continue
		}
		if attr(sys, dir, "hidden") == "1" || attr(sys, dir, "removable") == "1" {
			continue
		}
		sectors, err := strconv.ParseInt(attr(sys, dir, "size"), 10, 64)
		if err != nil || sectors <= 0 || sectors > 1<<54 {
			continue // not ready, or no medium
		}
		dev := attr(sys, dir, "dev")
		if _, _, ok := parseDev(dev); !ok {
			continue
		}
		disks = append(disks, blockDev{Name: name, Dev: dev, Size: sectors * 512, ReadOnly: attr(sys, dir, "ro") == "1"})
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Name < disks[j].Name })
	return disks, nil
}

// attr reads a sysfs attribute, trimmed; "" if there is none.
func attr(sys fs.FS, dir, name string) string {
	b, err := fs.ReadFile(sys, dir+"/"+name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// parseDev reads a "major:minor" device number.
func parseDev(s string) (major, minor uint32, ok bool) {
	a, b, found := strings.Cut(s, ":")
	ma, err1 := strconv.ParseUint(a, 10, 32)
	mi, err2 := strconv.ParseUint(b, 10, 32)
	return uint32(ma), uint32(mi), found && err1 == nil && err2 == nil
}

// waiter waits for the disks: scan lists them, probe tells whether a
// disk is the payload (an error: try again at the next scan).
type waiter struct {
	scan   func() ([]blockDev, error)
	probe  func(blockDev) (bool, error)
	wait   time.Duration // the longest wait for the payload
	settle time.Duration // how long the disk set must stay unchanged
	poll   time.Duration
	log    func(format string, args ...any)
}

// run polls until a payload disk is there and the set of disks has not
// changed for settle, or wait has passed (then the disks seen are taken
// if one of them is a payload). It returns the payload disks (several
// when the host batched several boot points into one run) and the
// others.
func (w *waiter) run() (payloads []blockDev, others []blockDev, err error) {
	start := time.Now()
	var (
		prev    string
		changed = start
		known   = map[string]bool{} // probed disks (name and device number) → payload
		disks   []blockDev
		lastErr error
	)
	for {
		now := time.Now()
		list, serr := w.scan()
		if serr != nil {
			lastErr = serr
		} else {
			disks = list
			var key strings.Builder
			for _, d := range disks {
				fmt.Fprintf(&key, "%s=%s/%d ", d.Name, d.Dev, d.Size)
			}
			if key.String() != prev {
				prev, changed = key.String(), now
				if w.log != nil && len(disks) > 0 {
					w.log("disks: %s", listString(disks))
				}
			}
		}
		payloads = payloads[:0]
		complete := serr == nil
		for _, d := range disks {
			id := d.Name + "=" + d.Dev
			is, ok := known[id]
			if !ok {
				var perr error
				if is, perr = w.probe(d); perr != nil {
					lastErr, complete = fmt.Errorf("%s: %w", d.Name, perr), false
					continue
				}
				known[id] = is
			}
			if is {
				payloads = append(payloads, d)
			}
		}
		timedOut := now.Sub(start) >= w.wait
		if len(payloads) > 0 && ((complete && now.Sub(changed) >= w.settle) || timedOut) {
			for _, d := range disks {
				if !slices.ContainsFunc(payloads, func(p blockDev) bool { return p.Name == d.Name }) {
					others = append(others, d)
				}
			}
			return payloads, others, nil
		}
		if timedOut {
			msg := fmt.Sprintf("no payload disk after %v", w.wait)
			if len(disks) == 0 {
				msg += ", and no disk at all"
			} else {
				msg += " among " + listString(disks)
			}
			if lastErr != nil {
				return nil, nil, fmt.Errorf("%s (last error: %w)", msg, lastErr)
			}
			return nil, nil, errors.New(msg)
		}
		time.Sleep(w.poll)
	}
}

func listString(disks []blockDev) string {
	var s []string
	for _, d := range disks {
		s = append(s, d.String())
	}
	return strings.Join(s, ", ")
}
