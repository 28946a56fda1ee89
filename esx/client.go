package esx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session/keepalive"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
)

// keepAliveIdle is how long a session may be idle before the keep-alive
// handler sends a request to keep it valid (ESXi expires idle sessions
// after 30 minutes by default).
const keepAliveIdle = 5 * time.Minute

// Host is a connection to an ESXi host (or vCenter) with the inventory
// objects standby VMs are created in. It implements bootpoint.Hypervisor,
// bootpoint.NetworkConnector and bootpoint.TestBooter.
//
// Methods may be called from several goroutines, but not on the same VM
// at once: the caller serializes the work on one VM.
type Host struct {
	Client     *vim25.Client
	Datacenter *object.Datacenter
	Datastore  *object.Datastore
	Pool       *object.ResourcePool
	Folder     *object.Folder
	// HostSystem is the host VMs are placed on; nil lets the pool decide.
	HostSystem *object.HostSystem
	// Network is the default network (GOVC_NETWORK); nil when none.
	Network object.NetworkReference

	// Transport moves files to and from the datastore; nil means
	// DatastoreHTTP.
	Transport Transport
	// Logger receives progress and cleanup messages; nil discards them.
	Logger *slog.Logger
	// AdapterType is the base disks' ddb.adapterType; empty means
	// "lsilogic", what ESXi writes for every SCSI controller.
	AdapterType string
	// Workers compress the base disks' grains; 0 means GOMAXPROCS.
	Workers int
	// TempDir holds spooled uploads, payloads and disk chains read back
	// for verification; empty means the system's temporary folder.
	TempDir string
	// Writer is how boot points reach the standby's disks; empty means
	// WriterAppliance.
	Writer Writer
	// Appliance configures the writer appliance.
	Appliance ApplianceOptions

	finder *find.Finder
	login  *relogin
	// applianceOnce makes appliance, which gathers the boot points
	// waiting for the writer appliance into its runs.
	applianceOnce sync.Once
	appliance     *applianceBatcher
}

var (
	_ bootpoint.Hypervisor       = (*Host)(nil)
	_ bootpoint.NetworkConnector = (*Host)(nil)
	_ bootpoint.TestBooter       = (*Host)(nil)
	_ bootpoint.VMRenamer        = (*Host)(nil)
)

// Connect logs in to the endpoint of cfg and resolves its inventory
// defaults. The session is kept alive while idle and re-established when
// the server reports it lost (NotAuthenticated).
func Connect(ctx context.Context, cfg Config) (*Host, error) {
	u, err := soap.ParseURL(cfg.URL)
	if err != nil {
		// The URL may hold a password: name what is wrong, not the URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("esx: the server URL does not parse (not shown: it may hold a password): %w", err)
	}
	if u == nil {
		return nil, errors.New("esx: no URL")
	}
	user := u.User
	if cfg.Username != "" || cfg.Password != "" {
		name, pass := user.Username(), ""
		if p, ok := user.Password(); ok {
			pass = p
		}
		if cfg.Username != "" {
			name = cfg.Username
		}
		if cfg.Password != "" {
			pass = cfg.Password
		}
		user = url.UserPassword(name, pass)
	}
	u.User = nil

	sc := soap.NewClient(u, cfg.Insecure)
	sc.Client.Transport = boundedSOAP{next: sc.Client.Transport, path: u.Path, limit: maxSOAPAnswer}
	if cfg.KnownHosts != "" {
		if err := sc.LoadThumbprints(cfg.KnownHosts); err != nil {
			return nil, fmt.Errorf("esx: known hosts %s: %w", cfg.KnownHosts, err)
		}
	}
	if cfg.Thumbprint != "" {
		sc.SetThumbprint(u.Host, cfg.Thumbprint)
	}

	rl := &relogin{user: user}
	ka := keepalive.NewHandlerSOAP(sc, keepAliveIdle, nil)
	rl.next = clipFaults{next: ka}
	c, err := vim25.NewClient(ctx, rl)
	if err != nil {
		if ce, ok := certificateError(ctx, u, cfg.KnownHosts, err); ok {
			return nil, ce
		}
		return nil, fmt.Errorf("esx: connecting to %s: %w", u.Host, err)
	}
	c.Client = sc // for HTTP transfers (datastore files, NFC)
	rl.sessionManager = c.ServiceContent.SessionManager
	if rl.sessionManager == nil {
		return nil, fmt.Errorf("esx: %s has no session manager", u.Host)
	}
	if err := rl.login(ctx); err != nil {
		return nil, fmt.Errorf("esx: login to %s: %w", u.Host, err)
	}
	h := &Host{Client: c, login: rl, Writer: cfg.Writer}
	switch cfg.ApplianceImage {
	case "":
	case ApplianceImageNone:
		h.Appliance.WithoutBootImage = true
	default:
		st, err := os.Stat(cfg.ApplianceImage)
		if err != nil {
			return nil, fmt.Errorf("esx: appliance image: %w", err)
		}
		p := cfg.ApplianceImage
		h.Appliance.Image = File{Name: filepath.Base(p), Size: st.Size(), Open: func() (io.ReadCloser, error) { return os.Open(p) }}
	}
	if err := h.resolve(ctx, cfg); err != nil {
		_ = h.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return h, nil
}

// resolve finds the inventory objects named in cfg, or the defaults.
func (h *Host) resolve(ctx context.Context, cfg Config) error {
	f := find.NewFinder(h.Client, true)
	dc, err := f.DatacenterOrDefault(ctx, cfg.Datacenter)
	if err != nil {
		return fmt.Errorf("esx: datacenter: %w", err)
	}
	f.SetDatacenter(dc)
	h.finder, h.Datacenter = f, dc

	if h.Datastore, err = f.DatastoreOrDefault(ctx, cfg.Datastore); err != nil {
		return fmt.Errorf("esx: datastore: %w", err)
	}
	if cfg.Host != "" {
		if h.HostSystem, err = f.HostSystem(ctx, cfg.Host); err != nil {
			return fmt.Errorf("esx: host: %w", err)
		}
	}
	switch {
	case cfg.ResourcePool != "":
		h.Pool, err = f.ResourcePool(ctx, cfg.ResourcePool)
	case h.HostSystem != nil:
		h.Pool, err = h.HostSystem.ResourcePool(ctx)
	default:
		h.Pool, err = f.DefaultResourcePool(ctx)
	}
	if err != nil {
		return fmt.Errorf("esx: resource pool: %w", err)
	}
	if h.Folder, err = f.FolderOrDefault(ctx, cfg.Folder); err != nil {
		return fmt.Errorf("esx: folder: %w", err)
	}
	if cfg.Network != "" {
		if h.Network, err = f.Network(ctx, cfg.Network); err != nil {
			return fmt.Errorf("esx: network: %w", err)
		}
	}
	return nil
}

// Close logs out.
func (h *Host) Close(ctx context.Context) error {
	if h.login == nil {
		return nil
	}
	_, err := methods.Logout(ctx, h.login.next, &types.Logout{This: *h.login.sessionManager})
	if err != nil {
		return fmt.Errorf("esx: logout: %w", err)
	}
	return nil
}

func (h *Host) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (h *Host) transport() Transport {
	if h.Transport != nil {
		return h.Transport
	}
	return DatastoreHTTP{TempDir: h.TempDir}
}

// relogin is a soap.RoundTripper that logs in again and repeats a call
// once when the server reports the session lost.
type relogin struct {
	next           soap.RoundTripper
	user           *url.Userinfo
	sessionManager *types.ManagedObjectReference

	mu  sync.Mutex
	gen int // incremented by each successful login
}

func (r *relogin) login(ctx context.Context) error {
	pass, _ := r.user.Password()
	_, err := methods.Login(ctx, r.next, &types.Login{
		This:     *r.sessionManager,
		UserName: r.user.Username(),
		Password: pass,
	})
	if err == nil {
		r.gen++
	}
	return err
}

func (r *relogin) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	r.mu.Lock()
	gen := r.gen
	r.mu.Unlock()
	err := r.next.RoundTrip(ctx, req, res)
	lost := fault.Is(err, &types.NotAuthenticated{}) || (err == nil && missingAuth(res))
	if !lost || r.sessionManager == nil {
		return err
	}
	switch req.(type) {
	case *methods.LoginBody, *methods.LogoutBody:
		return err
	}
	r.mu.Lock()
	if gen == r.gen { // nobody logged in again meanwhile
		if lerr := r.login(ctx); lerr != nil {
			r.mu.Unlock()
			return errors.Join(err, fmt.Errorf("esx: logging in again: %w", lerr))
		}
	}
	r.mu.Unlock()
	// The failed call may have left its fault in res: start afresh.
	if v := reflect.ValueOf(res); v.Kind() == reflect.Pointer && !v.IsNil() {
		v.Elem().Set(reflect.Zero(v.Elem().Type()))
	}
	return r.next.RoundTrip(ctx, req, res)
}

// missingAuth tells whether a property collector answer reports a lost
// session per object (its MissingSet) rather than as a fault.
func missingAuth(res soap.HasFault) bool {
	var objs []types.ObjectContent
	switch b := res.(type) {
	case *methods.RetrievePropertiesExBody:
		if b.Res != nil && b.Res.Returnval != nil {
			objs = b.Res.Returnval.Objects
		}
	case *methods.RetrievePropertiesBody:
		if b.Res != nil {
			objs = b.Res.Returnval
		}
	}
	for _, o := range objs {
		for _, m := range o.MissingSet {
			if _, ok := m.Fault.Fault.(*types.NotAuthenticated); ok {
				return true
			}
		}
	}
	return false
}
