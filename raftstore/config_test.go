package raftstore

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

func TestOpenRejectsBadConfig(t *testing.T) {
	p := pkitest.New(t)
	m := p.Node(t, "n1")
	valid := func() Config {
		return Config{NodeID: "n1", Bind: "127.0.0.1:0", ServerTLS: m.NodeServerConfig(), ClientTLS: m.ClientConfig("")}
	}
	cases := []struct {
		name    string
		mutate  func(c *Config)
		wantErr string
	}{
		{"no node id", func(c *Config) { c.NodeID = "" }, "NodeID"},
		{"node id with space", func(c *Config) { c.NodeID = "n 1" }, "NodeID"},
		{"node id too long", func(c *Config) { c.NodeID = strings.Repeat("x", 200) }, "NodeID"},
		{"no bind", func(c *Config) { c.Bind = "" }, "Bind"},
		{"bind without port", func(c *Config) { c.Bind = "127.0.0.1" }, "Bind"},
		{"wildcard bind without advertise", func(c *Config) { c.Bind = "0.0.0.0:0" }, "Advertise"},
		{"advertise wildcard", func(c *Config) { c.Advertise = "0.0.0.0:7880" }, "Advertise"},
		{"advertise port zero", func(c *Config) { c.Advertise = "10.0.0.1:0" }, "Advertise"},
		{"advertise no host", func(c *Config) { c.Advertise = ":7880" }, "Advertise"},
		{"no server tls", func(c *Config) { c.ServerTLS = nil }, "ServerTLS"},
		{"server tls without client auth", func(c *Config) {
			c.ServerTLS = &tls.Config{Certificates: []tls.Certificate{{}}}
		}, "ClientAuth"},
		{"no client tls", func(c *Config) { c.ClientTLS = nil }, "ClientTLS"},
		{"client tls without certificate", func(c *Config) { c.ClientTLS = &tls.Config{} }, "ClientTLS"},
		{"bind in use", nil, "listen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			if tc.mutate != nil {
				tc.mutate(&cfg)
			} else {
				ln := mustListen(t)
				defer ln.Close()
				cfg.Bind = ln.Addr().String()
			}
			s, err := Open(cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open accepted a bad config")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestOpenAdvertise(t *testing.T) {
	p := pkitest.New(t)
	m := p.Node(t, "n1")
	s, err := Open(Config{NodeID: "n1", Bind: "127.0.0.1:0", Advertise: "node1.example:7880",
		ServerTLS: m.NodeServerConfig(), ClientTLS: m.ClientConfig("")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RaftAddr() != "node1.example:7880" {
		t.Fatalf("RaftAddr %q, want the advertised address", s.RaftAddr())
	}
}
