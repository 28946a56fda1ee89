package esx_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
)

// tlsFront serves the simulator (plain HTTP) over TLS with a self-signed
// certificate, as an ESXi host does, and returns its URL with the
// simulator's credentials.
func tlsFront(t *testing.T, simURL string) string {
	t.Helper()
	back, err := url.Parse(simURL)
	require.NoError(t, err)
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: back.Scheme, Host: back.Host}))
	front.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	front.StartTLS()
	t.Cleanup(front.Close)
	u, err := url.Parse(front.URL + "/sdk")
	require.NoError(t, err)
	u.User = back.User
	return u.String()
}

// A self-signed certificate is refused with its thumbprint and how to
// trust it; the known-hosts line the error suggests makes the connection
// work.
func TestUntrustedCertificateGivesThumbprint(t *testing.T) {
	ctx := context.Background()
	sim, err := esxsim.Start(ctx, t.TempDir())
	require.NoError(t, err)
	defer sim.Close()
	known := filepath.Join(t.TempDir(), "known_hosts")
	cfg := esx.Config{URL: tlsFront(t, sim.URL()), Datastore: esxsim.Datastore, KnownHosts: known}

	_, err = esx.Connect(ctx, cfg)
	var ce *esx.CertificateError
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Regexp(t, `^([0-9A-F]{2}:){19}[0-9A-F]{2}$`, ce.SHA1)
	require.Regexp(t, `^([0-9A-F]{2}:){31}[0-9A-F]{2}$`, ce.SHA256)
	msg := err.Error()
	require.Contains(t, msg, "is not trusted (tls: failed to verify certificate: x509: ")
	require.Contains(t, msg, "echo '"+ce.Host+" "+ce.SHA1+"' >> "+known)
	require.Contains(t, msg, "GOVC_INSECURE=1")
	require.NotContains(t, msg, "/sdk", "the request's URL is left out")

	require.NoError(t, os.WriteFile(known, []byte(ce.Host+" "+ce.SHA1+"\n"), 0o600))
	h, err := esx.Connect(ctx, cfg)
	require.NoError(t, err, "the suggested known-hosts line is trusted")
	h.Close(ctx)

	cfg.KnownHosts = ""
	_, err = esx.Connect(ctx, cfg)
	require.ErrorContains(t, err, "export GOVC_TLS_KNOWN_HOSTS=~/.govmomi/known_hosts")
}
