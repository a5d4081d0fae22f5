package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/nodalmerge/nodalmerge-go/roomname"
)

// adminOpts are the flags shared by every `admin` subcommand.
type adminOpts struct {
	conn  connFlags
	json  bool
	stale bool
}

func newAdminCommand() *cobra.Command {
	a := &adminOpts{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Typed client for the admin gRPC API (status, members, keys, tokens, rooms, policy)",
		Long: "Call a node's admin API over mutual TLS with an operator token.\n\n" +
			"Connection defaults are the files a bare 'nodalmerge serve' writes into ./.nodalmerge:\n" +
			"tls/ca.pem, tls/operator.pem, tls/operator-key.pem and bootstrap-operator.token, and the\n" +
			"admin address 127.0.0.1:7879. The calling token is taken from --token, else --token-file when\n" +
			"given, else " + envToken + ", else STATE-DIR/bootstrap-operator.token.\n\n" +
			"Output is human-readable; --json prints the response as protobuf JSON (as grpcurl does).\n" +
			"Reads are linearizable; --stale lets the answering node serve them from its own state.\n" +
			"A refused call prints the gRPC code and message, e.g.\n" +
			"  PERMISSION_DENIED: reject.control_plane_forbidden: command=keys.rotate requires=cluster.admin\n" +
			"and exits with status 1.",
		Example: "  nodalmerge admin status\n" +
			"  NODALMERGE_TOKEN=$TOKEN nodalmerge admin --admin 10.0.0.5:7879 members --json\n" +
			"  nodalmerge admin keys rotate --purpose room-token --prepublish 10m --grace 24h",
	}
	pf := cmd.PersistentFlags()
	a.conn.register(pf)
	pf.BoolVar(&a.json, "json", false, "print the response as protobuf JSON")
	pf.BoolVar(&a.stale, "stale", false, "reads only: let the answering node serve from its own state (no leader round trip)")
	cmd.AddCommand(
		newAdminStatus(a), newAdminMembers(a), newAdminRemoveMember(a), newAdminTransferLeadership(a),
		newAdminKeys(a), newAdminToken(a), newAdminRevoke(a), newAdminRooms(a), newAdminPolicy(a),
	)
	// After AddCommand: it reaches the subcommands present now.
	cmd.SetGlobalNormalizationFunc(adminAddrAlias)
	return cmd
}

// callKind says whether a call reads or mutates, for --stale.
type callKind bool

const (
	read  callKind = true
	write callKind = false
)

// adminCall dials, makes one call and prints its answer: protobuf JSON
// with --json, human(w, resp) otherwise. A refused call becomes
// "CODE: message".
func adminCall[R proto.Message](cmd *cobra.Command, a *adminOpts, kind callKind,
	call func(ctx context.Context, cc *grpc.ClientConn) (R, error), human func(w io.Writer, resp R) error,
) error {
	if a.stale && kind == write {
		return errors.New("--stale: only reads (status, members, keys list, rooms list/describe, policy get) can be served stale")
	}
	a.conn.resolve(cmd.Flags())
	ac, err := a.conn.dial()
	if err != nil {
		return err
	}
	defer ac.Close()
	ctx, cancel := ac.ctx(cmd.Context(), a.stale && kind == read)
	defer cancel()
	resp, err := call(ctx, ac.conn)
	if err != nil {
		return callError(err)
	}
	if a.json {
		return printJSON(cmd.OutOrStdout(), resp)
	}
	return human(cmd.OutOrStdout(), resp)
}

// printJSON writes m as indented protobuf JSON, unset fields included so
// that scripts see every field. protojson varies its whitespace on
// purpose; re-indenting with encoding/json makes the output stable.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode the response: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("encode the response: %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// roomArgs is the positional-argument rule of the commands that take one
// ROOM: exactly one argument, a valid room name.
func roomArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.ExactArgs(1)(cmd, args); err != nil {
		return err
	}
	return roomArg("room", args[0])
}

// roomArg validates a room name given as an argument or flag.
func roomArg(what, room string) error {
	if !roomname.Valid(room) {
		return fmt.Errorf("%s %q: %s", what, room, roomname.Help)
	}
	return nil
}
