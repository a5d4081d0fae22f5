package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/nodalmerge/nodalmerge-go/pki"
)

// DefaultTLSReloadInterval is the default of --tls-reload-interval: how
// often certificate files are checked for renewal.
const DefaultTLSReloadInterval = 30 * time.Second

// TLS material is reloaded without restart. Both kinds of material already
// read their current generation per handshake (pki.Material for the admin
// gRPC server, the Raft transport and every dialer, pki.KeyPair for the
// public listener); what is added here is noticing renewed files. One
// pki.FileWatch per kind polls the files' identity, size and mtime every
// --tls-reload-interval. Each watch takes its baseline before the files are
// loaded, so a renewal that lands in between is picked up by the first
// check, not missed. A renewal that does not load (half written, key
// mismatch, another identity) is logged as a warning and the running
// material stays. New handshakes use the new material; established
// connections keep theirs.

// watchInternalTLS sets up the watch of the internal material's files. It
// is called before they are loaded (see above); reload reads n.tls, which
// is set by then.
func (n *Node) watchInternalTLS(ca, cert, key string) {
	log := n.cfg.Logger.With("component", "tls")
	n.tlsWatches = append(n.tlsWatches, pki.NewFileWatch("internal TLS material", []string{ca, cert, key}, func() error {
		prev := n.tls.Leaf().SerialNumber
		if err := n.tls.Reload(); err != nil {
			return err
		}
		leaf := n.tls.Leaf()
		log.Info("internal TLS material reloaded; new handshakes use it", "identity", n.tls.Identity().String(),
			"serial", leaf.SerialNumber.Text(16), "previous_serial", prev.Text(16),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		return nil
	}, log))
}

// loadPublicTLS loads --ws-tls-cert/--ws-tls-key when set and watches them.
func (n *Node) loadPublicTLS() error {
	cert, key := n.cfg.WSTLSCert, n.cfg.WSTLSKey
	if cert == "" {
		return nil
	}
	log := n.cfg.Logger.With("component", "tls")
	w := pki.NewFileWatch("public TLS certificate", []string{cert, key}, func() error {
		prev := n.wsTLS.Leaf().SerialNumber
		if err := n.wsTLS.Reload(); err != nil {
			return err
		}
		leaf := n.wsTLS.Leaf()
		log.Info("public TLS certificate reloaded; new connections use it", "subject", leaf.Subject.String(),
			"serial", leaf.SerialNumber.Text(16), "previous_serial", prev.Text(16),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		return nil
	}, log)
	kp, err := pki.LoadKeyPair(cert, key)
	if err != nil {
		return fmt.Errorf("--ws-tls-cert/--ws-tls-key: %w", err)
	}
	n.wsTLS = kp
	n.tlsWatches = append(n.tlsWatches, w)
	return nil
}

// publicListener puts TLS on the public listener when it is configured.
// http.Server notices *tls.Conn and fills in Request.TLS; its
// ReadHeaderTimeout also bounds the TLS handshake.
func (n *Node) publicListener(l net.Listener) net.Listener {
	if n.wsTLS == nil {
		return l
	}
	return tls.NewListener(l, n.wsTLS.ServerConfig())
}

// wsScheme is the scheme of the public listener's URLs.
func (n *Node) wsScheme() string {
	if n.wsTLS != nil {
		return "wss"
	}
	return "ws"
}

// startTLSReload starts polling the watched files; stopTLSReload ends it.
// With --tls-reload-interval 0 nothing is started.
func (n *Node) startTLSReload() {
	if n.cfg.TLSReloadInterval <= 0 || len(n.tlsWatches) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stopReload = cancel
	for _, w := range n.tlsWatches {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			w.Run(ctx, n.cfg.TLSReloadInterval)
		}()
	}
}

func (n *Node) stopTLSReload() {
	if n.stopReload != nil {
		n.stopReload()
	}
}
