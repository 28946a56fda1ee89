package esxsim

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	simesx "github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Datastore is the name of the simulator's datastore.
const Datastore = "datastore1"

// The simulator's credentials.
const (
	User     = "root"
	Password = "standbykit"
)

// Networks are the port groups of the simulator's host: ESXi's default
// "VM Network" plus two more for failover and test-boot tests.
var Networks = []string{"VM Network", "Failover Network", "Isolated Network"}

// Simulator is govmomi's in-process ESXi simulator (vcsim) with ESXi's
// disk semantics added, whose datastore is a local folder, so that tests
// can check the files independently. See the package documentation.
type Simulator struct {
	// Service is the simulator's service, e.g. for fault injection
	// (Service.AddFaultRule).
	Service *simulator.Service
	// Dir is the datastore's local folder.
	Dir string

	model  *simulator.Model
	server *simulator.Server
	// Logger hears about disk work that failed behind a call's answer;
	// nil discards.
	Logger *slog.Logger

	// disks serializes the work on disk files (snapshots, consolidation,
	// writes into leaves).
	disks sync.Mutex
	// calls lets one SOAP call at a time change vcsim's model; tasks
	// tells it when the call's tasks have ended (serial.go).
	calls          sync.Mutex
	tasks          runningTasks
	faultMu        sync.Mutex
	applianceFault ApplianceFault
	applianceRuns  []int // payloads per run
	guest          func(vmName string) GuestBehaviour
	screenshots    int
	// lockOwner is the simulator context this package locks vcsim's
	// objects on behalf of, outside vcsim's own calls.
	lockOwner *simulator.Context
	// keep: Close saves the inventory (Open).
	keep bool
}

func (s *Simulator) logf(format string, args ...any) {
	if s.Logger != nil {
		s.Logger.Warn(fmt.Sprintf(format, args...))
	}
}

// Start starts an ESXi-model simulator with one datastore, Datastore,
// backed by dir, no VMs, and the port groups Networks.
func Start(ctx context.Context, dir string) (s *Simulator, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("esxsim: dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("esxsim: dir: %w", err)
	}
	m := simulator.ESX()
	m.Datastore = 0 // ours, below, on dir
	m.Machine = 0
	m.Autostart = false
	if err := m.Create(); err != nil {
		return nil, fmt.Errorf("esxsim: creating simulator model: %w", err)
	}
	s = &Simulator{Service: m.Service, Dir: dir, model: m, lockOwner: simulator.NewContext()}
	m.Map().AddHandler(&s.tasks)
	m.Service.TLS = nil // plain HTTP on localhost; Config sets Insecure anyway
	// Only these credentials log in (vcsim's default accepts any).
	m.Service.Listen = &url.URL{User: url.UserPassword(User, Password)}
	nfc := &nfcStore{sim: s}
	for _, method := range []string{http.MethodPut, http.MethodPost} {
		m.Service.HandleFunc(method+" /nfc/", nfc.serve)
	}
	m.Service.HandleFunc(http.MethodPost+" /sdk", s.serveSDK)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
		m.Service.HandleFunc(method+" /folder/", s.serveFolder)
	}
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
		return nil, fmt.Errorf("esxsim: simulator datastore system: %w", err)
	}
	dsObj, err := dss.CreateLocalDatastore(ctx, Datastore, dir)
	if err != nil {
		return nil, fmt.Errorf("esxsim: simulator datastore: %w", err)
	}
	// Its deltas are vmfsSparse files, as on an NFS datastore: say so,
	// where vcsim says "OTHER".
	if sds, ok := m.Map().Get(dsObj.Reference()).(*simulator.Datastore); ok {
		m.Map().WithLock(s.lockOwner, sds, func() {
			sds.Summary.Type = string(types.HostFileSystemVolumeFileSystemTypeNFS)
		})
	}
	ns, err := host.ConfigManager().NetworkSystem(ctx)
	if err != nil {
		return nil, fmt.Errorf("esxsim: simulator network system: %w", err)
	}
	for _, name := range Networks[1:] {
		err := ns.AddPortGroup(ctx, types.HostPortGroupSpec{Name: name, VswitchName: "vSwitch0"})
		if err != nil {
			return nil, fmt.Errorf("esxsim: simulator port group %s: %w", name, err)
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
		return nil, fmt.Errorf("esxsim: simulator client: %w", err)
	}
	_, err = methods.Login(ctx, c, &types.Login{
		This:     *c.ServiceContent.SessionManager,
		UserName: User,
		Password: Password,
	})
	if err != nil {
		return nil, fmt.Errorf("esxsim: simulator login: %w", err)
	}
	return c, nil
}

// URL is the simulator's SDK address with its credentials. It speaks
// plain HTTP: connect without certificate checks.
func (s *Simulator) URL() string {
	u := *s.server.URL
	u.User = url.UserPassword(User, Password)
	return u.String()
}

// Close stops the simulator. The datastore folder is left as it is; a
// simulator started with Open saves its inventory first (a failure is
// logged: Shutdown returns it).
func (s *Simulator) Close() {
	if err := s.Shutdown(); err != nil {
		s.logf("%v", err)
	}
}

// Shutdown is Close that returns the failure to save the inventory of a
// simulator started with Open.
func (s *Simulator) Shutdown() error {
	var err error
	if s.keep {
		err = s.Save()
		s.keep = false // saved once, whatever Close is called after
	}
	if s.server != nil {
		s.server.Close()
	}
	s.model.Remove()
	return err
}
