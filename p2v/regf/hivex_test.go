package regf

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
)

// minimalHive builds the smallest hive hivex accepts: a base block and
// one 4 KiB bin holding the root nk, its sk and one free cell. hivex has
// no "create" call and Debian ships no template hive, so the tests start
// from this and let hivexsh add everything else.
func minimalHive() []byte {
	b := make([]byte, 8192)
	le := binary.LittleEndian
	copy(b, "regf")
	le.PutUint32(b[4:], 1)  // primary sequence
	le.PutUint32(b[8:], 1)  // secondary sequence
	le.PutUint32(b[20:], 1) // major
	le.PutUint32(b[24:], 5) // minor
	le.PutUint32(b[28:], 0) // primary file
	le.PutUint32(b[32:], 1) // format: direct memory load
	le.PutUint32(b[36:], 0x20)
	le.PutUint32(b[40:], 4096)
	le.PutUint32(b[44:], 1) // clustering factor
	for i, c := range "SYSTEM" {
		le.PutUint16(b[48+2*i:], uint16(c))
	}
	le.PutUint32(b[508:], Checksum(b))

	bin := b[4096:]
	copy(bin, "hbin")
	le.PutUint32(bin[4:], 0)
	le.PutUint32(bin[8:], 4096)

	// Root nk at 0x20.
	const nkOff, skOff = 0x20, 0x80
	name := "ROOT"
	nkSize := int(align8(4 + nkName + len(name)))
	nk := bin[nkOff:]
	le.PutUint32(nk, uint32(-int32(nkSize)))
	nk = nk[4:]
	copy(nk, "nk")
	le.PutUint16(nk[nkFlags:], 0x2c) // hive entry | no delete | compressed name
	le.PutUint32(nk[nkParent:], 0)
	le.PutUint32(nk[nkSubkeyList:], noOffset)
	le.PutUint32(nk[nkSubkeyList+4:], noOffset)
	le.PutUint32(nk[nkValueList:], noOffset)
	le.PutUint32(nk[nkSecurity:], skOff)
	le.PutUint32(nk[nkClass:], noOffset)
	le.PutUint16(nk[nkNameLen:], uint16(len(name)))
	copy(nk[nkName:], name)
	if nkOff+nkSize > skOff {
		panic("nk overlaps sk")
	}
	// Unused gap between nk and sk: a free cell.
	le.PutUint32(bin[nkOff+nkSize:], uint32(skOff-nkOff-nkSize))

	// sk: self-relative security descriptor, owner Administrators, group
	// SYSTEM, DACL allowing Everyone KEY_ALL_ACCESS.
	sd := securityDescriptor()
	skSize := int(align8(4 + 20 + len(sd)))
	sk := bin[skOff:]
	le.PutUint32(sk, uint32(-int32(skSize)))
	sk = sk[4:]
	copy(sk, "sk")
	le.PutUint32(sk[4:], skOff) // flink
	le.PutUint32(sk[8:], skOff) // blink
	le.PutUint32(sk[12:], 1)    // refcount
	le.PutUint32(sk[16:], uint32(len(sd)))
	copy(sk[20:], sd)
	freeOff := skOff + skSize
	le.PutUint32(bin[freeOff:], uint32(4096-freeOff))
	return b
}

func securityDescriptor() []byte {
	le := binary.LittleEndian
	sid := func(auth byte, subs ...uint32) []byte {
		s := []byte{1, byte(len(subs)), 0, 0, 0, 0, 0, auth}
		for _, v := range subs {
			s = le.AppendUint32(s, v)
		}
		return s
	}
	owner := sid(5, 32, 544)
	group := sid(5, 18)
	everyone := sid(1, 0)
	ace := []byte{0, 0x02, 0, 0} // ACCESS_ALLOWED, CONTAINER_INHERIT
	ace = le.AppendUint32(ace, 0xf003f)
	ace = append(ace, everyone...)
	le.PutUint16(ace[2:], uint16(len(ace)))
	acl := []byte{2, 0, 0, 0, 1, 0, 0, 0}
	acl = append(acl, ace...)
	le.PutUint16(acl[2:], uint16(len(acl)))
	sd := make([]byte, 20)
	sd[0] = 1
	le.PutUint16(sd[2:], 0x8004) // self-relative, DACL present
	le.PutUint32(sd[4:], 20)     // owner
	le.PutUint32(sd[8:], uint32(20+len(owner)))
	le.PutUint32(sd[16:], uint32(20+len(owner)+len(group)))
	sd = append(sd, owner...)
	sd = append(sd, group...)
	return append(sd, acl...)
}

// hivexsh runs a hivexsh -w script against the hive file at path (the
// script should end with "commit") and returns its output.
func hivexsh(t testing.TB, path, script string) string {
	t.Helper()
	oracle.Require(t, "hivexsh")
	sp := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(sp, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	return string(oracle.Run(t, "hivexsh", "-w", "-f", sp, path))
}

func writeFileT(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeHive writes b to a new file and returns its path.
func writeHive(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hive")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hexBytes formats b for a hivexsh "hex:" value.
func hexBytes(b []byte) string {
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			s.WriteByte(',')
		}
		fmt.Fprintf(&s, "%02x", c)
	}
	return s.String()
}
