package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/node"
)

// TestServeTransportFlags: the transport flags exist with their defaults,
// and bad combinations fail before anything starts, naming the flags.
func TestServeTransportFlags(t *testing.T) {
	cmd := newServeCommand()
	for flag, want := range map[string]string{
		"ws-tls-cert":         "",
		"ws-tls-key":          "",
		"tls-reload-interval": node.DefaultTLSReloadInterval.String(),
		"trusted-proxies":     "[]",
	} {
		f := cmd.Flags().Lookup(flag)
		if f == nil {
			t.Fatalf("--%s is missing", flag)
		}
		if f.DefValue != want {
			t.Errorf("--%s default %q, want %q", flag, f.DefValue, want)
		}
	}

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--ws-tls-cert", "cert.pem"}, []string{"--ws-tls-key"}},
		{[]string{"--ws-tls-key", "key.pem"}, []string{"--ws-tls-cert"}},
		{[]string{"--trusted-proxies", "10.0.0.0/8,300.1.2.3/32"}, []string{"--trusted-proxies", "300.1.2.3/32"}},
		{[]string{"--tls-reload-interval", "-1s"}, []string{"--tls-reload-interval"}},
		{[]string{"--listen", "127.0.0.1:7301", "--metrics-addr", "127.0.0.1:7301"}, []string{"--metrics-addr", "--listen"}},
		{[]string{"--listen", "127.0.0.1:7302", "--admin-listen", "127.0.0.1:7302"}, []string{"--admin-listen", "--listen"}},
		{[]string{"--admin-listen", "127.0.0.1:7303", "--metrics-addr", "127.0.0.1:7303"}, []string{"--metrics-addr", "--admin-listen"}},
	} {
		cmd := newServeCommand()
		cmd.SetArgs(append([]string{"--store", t.TempDir(), "--log-level", "error"}, tc.args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil {
			t.Errorf("%v: serve started", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not name %s", tc.args, err, w)
			}
		}
	}
}
