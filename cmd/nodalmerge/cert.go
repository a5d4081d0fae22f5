package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nodalmerge/nodalmerge-go/pki"
)

func newCertCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Make the cluster CA and certificates for nodes and operators",
	}
	cmd.AddCommand(newCertCreateCA(), newCertCreateNode(), newCertCreateClient())
	return cmd
}

func newCertCreateCA() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "create-ca",
		Short: "Make a cluster CA: DIR/ca.pem and DIR/ca-key.pem (0600)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.CreateCA(dir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\n", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder for the CA (created 0700 when missing)")
	cmd.MarkFlagRequired("dir")
	return cmd
}

func newCertCreateNode() *cobra.Command {
	var caDir, dir, nodeID string
	var hosts []string
	cmd := &cobra.Command{
		Use:   "create-node",
		Short: "Make a node certificate: DIR/node.pem, DIR/node-key.pem and a copy of ca.pem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.CreateNode(caDir, dir, nodeID, hosts); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s for node %s\n", filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"), nodeID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&caDir, "ca-dir", "", "folder holding ca.pem and ca-key.pem")
	f.StringVar(&dir, "dir", "", "folder for the node's files (created 0700 when missing)")
	f.StringVar(&nodeID, "node-id", "", "the node's id")
	f.StringSliceVar(&hosts, "hosts", nil, "host names and IPs the node is reached at (localhost, 127.0.0.1 and ::1 are always covered)")
	for _, name := range []string{"ca-dir", "dir", "node-id"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}

func newCertCreateClient() *cobra.Command {
	var caDir, dir, name string
	cmd := &cobra.Command{
		Use:   "create-client",
		Short: "Make an operator client certificate: DIR/NAME.pem and DIR/NAME-key.pem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.CreateClient(caDir, dir, name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\n", filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&caDir, "ca-dir", "", "folder holding ca.pem and ca-key.pem")
	f.StringVar(&dir, "dir", "", "folder for the client's files (created 0700 when missing)")
	f.StringVar(&name, "name", "", "the operator's name")
	for _, n := range []string{"ca-dir", "dir", "name"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}
