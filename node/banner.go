package node

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/nodalmerge/nodalmerge-go/pki"
)

// writeBanner prints what a newcomer needs: where to connect and a grpcurl
// command that works as printed. It names the token file, never the token.
func (n *Node) writeBanner(w io.Writer) {
	mode := "in memory (start with --store DIR to keep state)"
	if n.state.durable {
		mode = "durable, store " + n.state.dir
	}
	fmt.Fprintf(w, "NodalMerge node %s, cluster %s: %s\n", n.nodeID, n.store.ClusterID(), mode)
	fmt.Fprintf(w, "  WebSocket rooms  %s://%s/ws/{room}\n", n.wsScheme(), dialable(n.PublicAddr()))
	fmt.Fprintf(w, "  admin gRPC       %s (mutual TLS)\n", n.AdminAddr())
	fmt.Fprintf(w, "  raft             %s (mutual TLS)\n", n.RaftAddr())
	if m := n.MetricsAddr(); m != "" {
		fmt.Fprintf(w, "  metrics          http://%s/metrics\n", dialable(m))
	}
	fmt.Fprintf(w, "  state folder     %s\n", n.state.dir)
	fmt.Fprintf(w, "  operator token   %s (%s)\n", n.state.tokenPath(), tokenFileStatus(n.state.tokenPath(), n.store, n.cfg.Now()))

	ca, cert, key := n.cfg.TLSCA, "<operator.pem>", "<operator-key.pem>"
	if ca == "" {
		dir := n.state.tlsDir()
		opCert, opKey := pki.ClientFiles(pki.DevOperatorName)
		ca, cert, key = filepath.Join(dir, pki.CAFile), filepath.Join(dir, opCert), filepath.Join(dir, opKey)
	}
	fmt.Fprintf(w, "Try the admin API:\n")
	fmt.Fprintf(w, "  grpcurl -cacert %s -cert %s -key %s -H \"authorization: Bearer $(cat %s)\" %s nodalmerge.admin.v1.ClusterService/GetStatus\n",
		shellQuote(ca), shellQuote(cert), shellQuote(key), shellQuote(n.state.tokenPath()), dialable(n.AdminAddr()))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
