package esx

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigFromEnv(t *testing.T) {
	full := map[string]string{
		"GOVC_URL":             "esx1.example.com",
		"GOVC_USERNAME":        "root",
		"GOVC_PASSWORD":        "secret",
		"GOVC_TLS_KNOWN_HOSTS": "/etc/standbykit/known_hosts",
		"GOVC_DATACENTER":      "ha-datacenter",
		"GOVC_DATASTORE":       "datastore1",
		"GOVC_RESOURCE_POOL":   "pool1",
		"GOVC_FOLDER":          "standby",
		"GOVC_NETWORK":         "VM Network",
		"GOVC_HOST":            "esx1",
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{
			name: "all variables, insecure unset means verify",
			env:  full,
			want: Config{
				URL: "esx1.example.com", Username: "root", Password: "secret",
				KnownHosts: "/etc/standbykit/known_hosts", Datacenter: "ha-datacenter", Datastore: "datastore1",
				ResourcePool: "pool1", Folder: "standby", Network: "VM Network", Host: "esx1",
			},
		},
		{
			name: "insecure true",
			env:  map[string]string{"GOVC_URL": "https://u:p@h/sdk", "GOVC_INSECURE": "1"},
			want: Config{URL: "https://u:p@h/sdk", Insecure: true},
		},
		{
			name: "insecure false",
			env:  map[string]string{"GOVC_URL": "h", "GOVC_INSECURE": "false"},
			want: Config{URL: "h"},
		},
		{
			name:    "invalid bool",
			env:     map[string]string{"GOVC_URL": "h", "GOVC_INSECURE": "maybe"},
			wantErr: "GOVC_INSECURE",
		},
		{
			name:    "no URL",
			env:     map[string]string{},
			wantErr: "GOVC_URL",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// An unparsable URL is reported without the URL: it may hold a password.
func TestBadURLHidesPassword(t *testing.T) {
	for _, u := range []string{"https://root:s3cret@host:bad/sdk", "root:s3cret@ho st", "%zz:s3cret@x"} {
		_, err := Connect(context.Background(), Config{URL: u})
		require.Error(t, err)
		require.NotContains(t, err.Error(), "s3cret", u)
		require.Contains(t, err.Error(), "does not parse")
	}
}
