package esx

import (
	"errors"
	"fmt"
	"strconv"
)

// govc's environment variable names (govmomi cli/flags). govc has no
// variable for a single certificate thumbprint: it reads thumbprints from
// the known-hosts file named by GOVC_TLS_KNOWN_HOSTS.
const (
	EnvURL          = "GOVC_URL"
	EnvUsername     = "GOVC_USERNAME"
	EnvPassword     = "GOVC_PASSWORD"
	EnvInsecure     = "GOVC_INSECURE"
	EnvKnownHosts   = "GOVC_TLS_KNOWN_HOSTS"
	EnvDatacenter   = "GOVC_DATACENTER"
	EnvDatastore    = "GOVC_DATASTORE"
	EnvResourcePool = "GOVC_RESOURCE_POOL"
	EnvFolder       = "GOVC_FOLDER"
	EnvNetwork      = "GOVC_NETWORK"
	EnvHost         = "GOVC_HOST"

	// EnvWriter names the Writer ("appliance", the default, or "upload").
	EnvWriter = "STANDBYKIT_WRITER"
	// EnvApplianceImage is the writer appliance's boot image (the ISO
	// build-appliance makes); "none" deploys it without one, which only
	// the simulator (esx/esxsim) runs.
	EnvApplianceImage = "STANDBYKIT_APPLIANCE_IMAGE"
)

// Config says how to reach an ESXi host (or vCenter) and where standby VMs
// live on it. Empty inventory fields mean the default (the only) object of
// that kind, as govc resolves them.
type Config struct {
	// URL is the SDK endpoint, in any form govc accepts: "host",
	// "user:pass@host", "https://host/sdk".
	URL      string
	Username string // overrides the URL's user when set
	Password string // overrides the URL's password when set
	// Insecure skips certificate verification. Off by default.
	Insecure bool
	// Thumbprint pins the server certificate's SHA-1 or SHA-256
	// thumbprint (as "AA:BB:..."), for self-signed ESXi certificates.
	Thumbprint string
	// KnownHosts is a file of "host thumbprint" lines (govc's
	// GOVC_TLS_KNOWN_HOSTS).
	KnownHosts string

	Datacenter   string
	Datastore    string
	ResourcePool string
	Folder       string
	Network      string
	Host         string

	// Writer is how boot points reach the standby's disks; empty means
	// WriterAppliance.
	Writer Writer
	// ApplianceImage is the path of the writer appliance's boot image,
	// used when the appliance is deployed; ApplianceImageNone deploys it
	// without one (for the simulator).
	ApplianceImage string
}

// ApplianceImageNone as Config.ApplianceImage deploys the writer
// appliance without boot media: only the simulator runs it.
const ApplianceImageNone = "none"

// ConfigFromEnv reads a Config from govc's environment variables through
// getenv (os.Getenv in production).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		URL:          getenv(EnvURL),
		Username:     getenv(EnvUsername),
		Password:     getenv(EnvPassword),
		KnownHosts:   getenv(EnvKnownHosts),
		Datacenter:   getenv(EnvDatacenter),
		Datastore:    getenv(EnvDatastore),
		ResourcePool: getenv(EnvResourcePool),
		Folder:       getenv(EnvFolder),
		Network:      getenv(EnvNetwork),
		Host:         getenv(EnvHost),

		Writer:         Writer(getenv(EnvWriter)),
		ApplianceImage: getenv(EnvApplianceImage),
	}
	switch c.Writer {
	case "", WriterAppliance, WriterUpload:
	default:
		return Config{}, fmt.Errorf("esx: %s=%q: want %q or %q", EnvWriter, c.Writer, WriterAppliance, WriterUpload)
	}
	if v := getenv(EnvInsecure); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("esx: %s=%q: %w", EnvInsecure, v, err)
		}
		c.Insecure = b
	}
	if c.URL == "" {
		return Config{}, errors.New("esx: " + EnvURL + " is not set")
	}
	return c, nil
}
