package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nodalmerge/nodalmerge-go/keyring"
)

func newKEKCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kek",
		Short: "Make the key-encryption key that seals keyring seeds at rest (serve --kek-file)",
	}
	cmd.AddCommand(newKEKCreate())
	return cmd
}

func newKEKCreate() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Write a new random key-encryption key (64 hex digits) to a new 0600 file",
		Long: "Write 32 random bytes as 64 hex digits to --out, created with mode 0600 (an existing file is\n" +
			"never overwritten), and print the KEK id. Start every node with `serve --kek-file PATH` holding\n" +
			"the same key: the keyring seeds they generate are then stored sealed in the Raft log and\n" +
			"snapshots, and only nodes holding the key can sign with them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKEKCreate(cmd, out) },
	}
	cmd.Flags().StringVar(&out, "out", "", "file to create (mode 0600)")
	cmd.MarkFlagRequired("out")
	return cmd
}

func runKEKCreate(cmd *cobra.Command, out string) error {
	text, err := keyring.GenerateKEK()
	if err != nil {
		return err
	}
	defer clear(text)
	kek, err := keyring.ParseKEK(text)
	if err != nil {
		return err
	}
	if err := writeSecretFile(out, text, "the key"); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "kek_id %s\n", kek.ID())
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote the key-encryption key to %s (0600); start nodes with --kek-file %s and keep a copy offline:\n"+
		"keys sealed with it cannot sign without it\n", out, out)
	return nil
}
