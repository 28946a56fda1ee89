package esx

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/soap"
)

// CertificateError reports a server whose TLS certificate is not trusted
// (self-signed, as ESXi's are by default, or for another name). It gives
// the certificate's thumbprint and how to trust it, as govc does.
type CertificateError struct {
	Host string // host:port as dialled
	// SHA1 and SHA256 are the thumbprints of the certificate the server
	// presented ("AB:CD:…"), either of which a known-hosts line or
	// Config.Thumbprint takes; empty when it could not be read again.
	SHA1, SHA256 string
	// KnownHosts is the known-hosts file in use, if any.
	KnownHosts string
	Err        error
}

func (e *CertificateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "esx: the TLS certificate of %s is not trusted (%v)", e.Host, e.Err)
	thumb, kind := e.SHA1, "SHA-1" // what `govc about.cert -thumbprint` prints
	if thumb == "" {
		thumb, kind = e.SHA256, "SHA-256"
	}
	if thumb == "" {
		fmt.Fprintf(&b, "; to skip the check (not advised): export %s=1", EnvInsecure)
		return b.String()
	}
	fmt.Fprintf(&b, ".\nIts %s thumbprint is %s", kind, thumb)
	if e.SHA256 != "" && thumb != e.SHA256 {
		fmt.Fprintf(&b, " (SHA-256: %s)", e.SHA256)
	}
	b.WriteString(".\nIf it is the host's (on ESXi: openssl x509 -in /etc/vmware/ssl/rui.crt -noout -fingerprint -sha1), trust it:\n")
	if e.KnownHosts != "" {
		fmt.Fprintf(&b, "  echo '%s %s' >> %s\n", e.Host, thumb, e.KnownHosts)
	} else {
		fmt.Fprintf(&b, "  mkdir -p ~/.govmomi && echo '%s %s' >> ~/.govmomi/known_hosts\n", e.Host, thumb)
		fmt.Fprintf(&b, "  export %s=~/.govmomi/known_hosts\n", EnvKnownHosts)
	}
	fmt.Fprintf(&b, "or skip the check (not advised): export %s=1", EnvInsecure)
	return b.String()
}

func (e *CertificateError) Unwrap() error { return e.Err }

// certificateError turns a failed connection to u into a
// *CertificateError when the certificate was the reason (ok), reading the
// certificate again without verification to give its thumbprints.
func certificateError(ctx context.Context, u *url.URL, knownHosts string, err error) (_ *CertificateError, ok bool) {
	if !soap.IsCertificateUntrusted(err) {
		return nil, false
	}
	host := u.Host
	if _, port, splitErr := net.SplitHostPort(host); splitErr != nil || port == "" {
		host = net.JoinHostPort(strings.Trim(u.Hostname(), "[]"), "443")
	}
	ce := &CertificateError{Host: host, KnownHosts: knownHosts, Err: untrustedReason(err)}
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config: &tls.Config{InsecureSkipVerify: true}} // only to read the certificate, never to talk
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, derr := dialer.DialContext(dctx, "tcp", host)
	if derr == nil {
		if certs := conn.(*tls.Conn).ConnectionState().PeerCertificates; len(certs) > 0 {
			ce.SHA1, ce.SHA256 = soap.ThumbprintSHA1(certs[0]), soap.ThumbprintSHA256(certs[0])
		}
		conn.Close()
	}
	return ce, true
}

// untrustedReason is the x509 part of a transport error, without the
// request's URL around it.
func untrustedReason(err error) error {
	for e := err; e != nil; {
		if strings.HasPrefix(e.Error(), "x509: ") || strings.HasPrefix(e.Error(), "tls: ") {
			return e
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}
