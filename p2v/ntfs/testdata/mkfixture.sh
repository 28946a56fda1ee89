#!/bin/sh
# Rebuilds windows.img.gz, the NTFS volume the fixture tests read: a
# Windows-like tree that the ntfs-3g command-line tools cannot make (they
# create no directories), so it is written through an ntfs-3g FUSE mount.
# Needs root (or FUSE rights), mkntfs and ntfs-3g, python3. Its contents
# are deterministic (fixtureContent in fixture_test.go describes them) but
# the image is not bit-for-bit reproducible (timestamps, GUIDs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'fusermount -u "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
img=$work/windows.img
truncate -s 8M "$img"
mkntfs -F -q -Q -s 512 -c 4096 -L FIXTURE "$img" >/dev/null 2>&1
mkdir "$work/mnt"
ntfs-3g -o compression "$img" "$work/mnt"
cd "$work/mnt"
python3 - <<'PY'
import os

def content(name, n):
    # Deterministic, compressible-but-not-trivial bytes.
    line = ("%s: StandbyKit NTFS fixture line " % name).encode()
    out = bytearray()
    i = 0
    while len(out) < n:
        out += line + str(i).encode() + b"\n"
        i += 1
    return bytes(out[:n])

def write(path, n):
    with open(path, "wb") as f:
        f.write(content(os.path.basename(path), n))

os.makedirs("Windows/System32/config")
os.makedirs("Windows/System32/drivers")
write("Windows/System32/config/SYSTEM", 100000)
write("Windows/System32/config/SOFTWARE", 600)     # resident
os.link("Windows/System32/config/SYSTEM", "Windows/System32/config/SYSTEM.hardlink")
for i in range(500):
    write("Windows/System32/drivers/Drv%03d.sys" % i, 100 + i)
write("Long File Name.txt", 5000)
os.setxattr("Long File Name.txt", "system.ntfs_dos_name", b"LONGFI~1.TXT")
os.makedirs("D\u00f6kumente")
write("D\u00f6kumente/\u00c4hre.txt", 3000)
os.setxattr("D\u00f6kumente/\u00c4hre.txt", "user.stream", b"a named stream")
os.makedirs("Compressed")
a = int.from_bytes(os.getxattr("Compressed", "system.ntfs_attrib_be"), "big")
os.setxattr("Compressed", "system.ntfs_attrib_be", (a | 0x800).to_bytes(4, "big"))
write("Compressed/c.txt", 60000)
with open("sparse.bin", "wb") as f:
    f.seek(500000); f.write(content("sparse", 5000))
    f.seek(2000000); f.write(b"end")
PY
cd /
fusermount -u "$work/mnt"
gzip -9 -n -c "$img" > "$here/windows.img.gz"
ls -l "$here/windows.img.gz"
