package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "nodalmerge",
		Short: "NodalMerge: a clustered real-time room server",
		Long: "NodalMerge syncs signed, content-addressed history through WebSocket rooms.\n" +
			"Nodes form a Raft cluster; operators drive it through a capability-gated gRPC admin API.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newCertCommand(), newTokenCommand(), newKEKCommand())
	root.AddCommand(newAdminCommand())
	return root
}
