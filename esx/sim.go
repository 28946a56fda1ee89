package esx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	simesx "github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// SimDatastore is the name of the simulator's datastore.
const SimDatastore = "datastore1"

// The simulator's credentials.
const (
	SimUser     = "root"
	SimPassword = "standbykit"
)

// SimNetworks are the port groups of the simulator's host: ESXi's default
// "VM Network" plus two more for failover and test-boot tests.
var SimNetworks = []string{"VM Network", "Failover Network", "Isolated Network"}

// Simulator is govmomi's in-process ESXi simulator (vcsim) whose datastore
// is a local folder, so that tests can check the files independently.
//
// vcsim discards the bytes of NFC (ImportVApp) uploads; Simulator stores
// them in the datastore file the lease names, as a real host would store
// the imported disk (unconverted: the streamOptimized bytes as sent).
type Simulator struct {
	// Service is the simulator's service, e.g. for fault injection
	// (Service.AddFaultRule).
	Service *simulator.Service
	// Dir is the datastore's local folder.
	Dir string

	model  *simulator.Model
	server *simulator.Server
}

// StartSimulator starts an ESXi-model simulator with one datastore,
// SimDatastore, backed by dir, no VMs, and the port groups SimNetworks.
func StartSimulator(ctx context.Context, dir string) (s *Simulator, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("esx: simulator dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("esx: simulator dir: %w", err)
	}
	m := simulator.ESX()
	m.Datastore = 0 // ours, below, on dir
	m.Machine = 0
	m.Autostart = false
	if err := m.Create(); err != nil {
		return nil, fmt.Errorf("esx: creating simulator model: %w", err)
	}
	s = &Simulator{Service: m.Service, Dir: dir, model: m}
	m.Service.TLS = nil // plain HTTP on localhost; Config sets Insecure anyway
	// Only these credentials log in (vcsim's default accepts any).
	m.Service.Listen = &url.URL{User: url.UserPassword(SimUser, SimPassword)}
	nfc := &nfcStore{dir: dir}
	for _, method := range []string{http.MethodPut, http.MethodPost} {
		m.Service.HandleFunc(method+" /nfc/", nfc.serve)
	}
	m.Service.HandleFunc(http.MethodPost+" /sdk", s.serveSDK)
	s.server = m.Service.NewServer()
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	c, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	host := object.NewHostSystem(c, simesx.HostSystem.Reference())
	dss, err := host.ConfigManager().DatastoreSystem(ctx)
	if err != nil {
		return nil, fmt.Errorf("esx: simulator datastore system: %w", err)
	}
	if _, err := dss.CreateLocalDatastore(ctx, SimDatastore, dir); err != nil {
		return nil, fmt.Errorf("esx: simulator datastore: %w", err)
	}
	ns, err := host.ConfigManager().NetworkSystem(ctx)
	if err != nil {
		return nil, fmt.Errorf("esx: simulator network system: %w", err)
	}
	for _, name := range SimNetworks[1:] {
		err := ns.AddPortGroup(ctx, types.HostPortGroupSpec{Name: name, VswitchName: "vSwitch0"})
		if err != nil {
			return nil, fmt.Errorf("esx: simulator port group %s: %w", name, err)
		}
	}
	_, _ = methods.Logout(ctx, c, &types.Logout{This: *c.ServiceContent.SessionManager})
	return s, nil
}

// client logs in with the simulator's default credentials.
func (s *Simulator) client(ctx context.Context) (*vim25.Client, error) {
	u := *s.server.URL
	u.User = nil
	sc := soap.NewClient(&u, true)
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("esx: simulator client: %w", err)
	}
	_, err = methods.Login(ctx, c, &types.Login{
		This:     *c.ServiceContent.SessionManager,
		UserName: SimUser,
		Password: SimPassword,
	})
	if err != nil {
		return nil, fmt.Errorf("esx: simulator login: %w", err)
	}
	return c, nil
}

// Config is how to connect to the simulator.
func (s *Simulator) Config() Config {
	u := *s.server.URL
	u.User = url.UserPassword(SimUser, SimPassword)
	return Config{URL: u.String(), Insecure: true, Datastore: SimDatastore}
}

// Close stops the simulator. The datastore folder is left as it is.
func (s *Simulator) Close() {
	if s.server != nil {
		s.server.Close()
	}
	s.model.Remove()
}

// serveSDK passes SOAP calls to vcsim, mending one of its bugs on the way:
// vcsim's RemoveSnapshot_Task deletes the file whose layout key the
// snapshot recorded at creation, but vcsim renumbers layout keys whenever
// it refreshes the VM's storage, so the key then names another file — a
// delta disk that later snapshots still need. Unsetting the key before the
// call makes vcsim delete nothing; a real host consolidates instead.
func (s *Simulator) serveSDK(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if m := removeSnapshotCall.FindSubmatch(body); m != nil {
		s.forgetSnapshotFile(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: string(m[1])})
	}
	s.Service.ServeSDK(w, r)
}

var removeSnapshotCall = regexp.MustCompile(`<RemoveSnapshot_Task[^>]*>\s*<_this[^>]*>([^<]+)</_this>`)

func (s *Simulator) forgetSnapshotFile(ref types.ManagedObjectReference) {
	reg := s.model.Map()
	snap, ok := reg.Get(ref).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return // vcsim answers with its own fault
	}
	vm, ok := reg.Get(snap.Vm).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	reg.WithLock(simulator.NewContext(), vm, func() {
		for i := range vm.LayoutEx.Snapshot {
			if vm.LayoutEx.Snapshot[i].Key == ref {
				vm.LayoutEx.Snapshot[i].DataKey = -1
				vm.LayoutEx.Snapshot[i].MemoryKey = -1
			}
		}
	})
}

// nfcStore stores the body of NFC uploads in the datastore folder, then
// lets vcsim record the transfer (its lease manifest).
type nfcStore struct{ dir string }

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
	_ = os.Rename(tmp.Name(), target)
}

// target finds the one disk file of that name the import created:
// <dir>/<vm folder>/<name>.
func (n *nfcStore) target(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", errors.New("invalid NFC target " + url.PathEscape(name))
	}
	m, err := filepath.Glob(filepath.Join(n.dir, "*", name))
	if err != nil || len(m) != 1 {
		return "", fmt.Errorf("NFC target %s: %d candidates", name, len(m))
	}
	return m[0], nil
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
