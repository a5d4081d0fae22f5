package controlplane

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// AdminPackage is the proto package whose services form the admin API. Every
// method of every service in it must carry the command option.
const AdminPackage protoreflect.FullName = "nodalmerge.admin.v1"

// roomFieldName is the request field a room-scoped command names its room in.
// The WebSocket path uses the same JSON name, so one payload serves both.
const roomFieldName protoreflect.Name = "room"

// Command is one control-plane command as declared by the proto option of
// the RPC that implements it.
type Command struct {
	// Name is the command name used in audit events, metric labels, deny
	// errors and on the WebSocket path, e.g. "cluster.status".
	Name string
	// Capability is the exact capability string a caller must hold.
	Capability string
	// FullMethod is the gRPC method, e.g.
	// "/nodalmerge.admin.v1.ClusterService/GetStatus".
	FullMethod string
	// RoomScoped commands also require the request's room to fall inside
	// the caller's token rooms.
	RoomScoped bool
	// Mutation commands change replicated state.
	Mutation bool
}

// DenyMessage is the exact deny text of the SPEC, shared by the gRPC status
// message and the WebSocket error frame.
func (c Command) DenyMessage() string {
	return denyMessage(c.Name, c.Capability)
}

func denyMessage(name, capability string) string {
	return "reject.control_plane_forbidden: command=" + name + " requires=" + capability
}

// Registry maps gRPC methods and command names to commands. It is immutable
// once built and safe for concurrent use.
type Registry struct {
	byMethod map[string]Command
	byName   map[string]Command
	all      []Command
	// methods holds each command's descriptor, for building its request
	// and response messages (forwarding, the WebSocket door).
	methods map[string]protoreflect.MethodDescriptor
}

// NewRegistry builds the registry from the compiled descriptors of every
// service in the nodalmerge.admin.v1 package linked into this binary.
func NewRegistry() (*Registry, error) {
	return buildRegistry(protoregistry.GlobalFiles, AdminPackage)
}

// buildRegistry is NewRegistry over any descriptor set, so tests can feed it
// synthetic files that break the rules.
func buildRegistry(files *protoregistry.Files, pkg protoreflect.FullName) (*Registry, error) {
	r := &Registry{
		byMethod: make(map[string]Command),
		byName:   make(map[string]Command),
		methods:  make(map[string]protoreflect.MethodDescriptor),
	}
	var errs []error
	files.RangeFilesByPackage(pkg, func(fd protoreflect.FileDescriptor) bool {
		services := fd.Services()
		for i := range services.Len() {
			methods := services.Get(i).Methods()
			for j := range methods.Len() {
				if err := r.add(methods.Get(j)); err != nil {
					errs = append(errs, err)
				}
			}
		}
		return true
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("controlplane: build command registry: %w", err)
	}
	if len(r.all) == 0 {
		// An admin API with no commands means the generated code was not
		// linked in; serving it would refuse everything for a confusing
		// reason, so refuse to start instead.
		return nil, fmt.Errorf("controlplane: build command registry: no services found in package %s", pkg)
	}
	slices.SortFunc(r.all, func(a, b Command) int { return strings.Compare(a.Name, b.Name) })
	return r, nil
}

func (r *Registry) add(md protoreflect.MethodDescriptor) error {
	fullMethod := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	opts, ok := md.Options().(*descriptorpb.MethodOptions)
	if !ok || opts == nil || !proto.HasExtension(opts, adminv1.E_Command) {
		return fmt.Errorf("method %s has no (nodalmerge.admin.v1.command) option", fullMethod)
	}
	spec, ok := proto.GetExtension(opts, adminv1.E_Command).(*adminv1.CommandSpec)
	if !ok || spec == nil {
		return fmt.Errorf("method %s: command option has an unexpected type", fullMethod)
	}
	cmd := Command{
		Name:       spec.GetName(),
		Capability: spec.GetCapability(),
		FullMethod: fullMethod,
		RoomScoped: spec.GetRoomScoped(),
		Mutation:   spec.GetMutation(),
	}
	switch {
	case strings.TrimSpace(cmd.Name) != cmd.Name || cmd.Name == "":
		return fmt.Errorf("method %s: command name %q is empty or padded", fullMethod, cmd.Name)
	case strings.TrimSpace(cmd.Capability) != cmd.Capability || cmd.Capability == "":
		return fmt.Errorf("method %s: command %s has an empty or padded capability %q", fullMethod, cmd.Name, cmd.Capability)
	}
	if cmd.RoomScoped {
		room := md.Input().Fields().ByName(roomFieldName)
		if room == nil || room.Kind() != protoreflect.StringKind || room.Cardinality() == protoreflect.Repeated {
			return fmt.Errorf("method %s: room-scoped command %s needs a singular string field %q in %s",
				fullMethod, cmd.Name, roomFieldName, md.Input().FullName())
		}
	}
	if prev, dup := r.byName[cmd.Name]; dup {
		return fmt.Errorf("methods %s and %s share the command name %q", prev.FullMethod, fullMethod, cmd.Name)
	}
	r.byMethod[fullMethod] = cmd
	r.byName[cmd.Name] = cmd
	r.methods[fullMethod] = md
	r.all = append(r.all, cmd)
	return nil
}

// Lookup answers the command a gRPC method implements.
func (r *Registry) Lookup(fullMethod string) (Command, bool) {
	c, ok := r.byMethod[fullMethod]
	return c, ok
}

// ByName answers the command with the given name; the WebSocket control
// commands resolve through it.
func (r *Registry) ByName(name string) (Command, bool) {
	c, ok := r.byName[name]
	return c, ok
}

// All answers every command, sorted by name. The slice is a copy.
func (r *Registry) All() []Command {
	return slices.Clone(r.all)
}

// newRequest answers an empty request message of a command's method.
func (r *Registry) newRequest(fullMethod string) (proto.Message, error) {
	md, ok := r.methods[fullMethod]
	if !ok {
		return nil, fmt.Errorf("controlplane: no command for method %s", fullMethod)
	}
	return newMessage(md.Input()), nil
}

// newResponse answers an empty response message of a command's method.
func (r *Registry) newResponse(fullMethod string) (proto.Message, error) {
	md, ok := r.methods[fullMethod]
	if !ok {
		return nil, fmt.Errorf("controlplane: no command for method %s", fullMethod)
	}
	return newMessage(md.Output()), nil
}

// newMessage prefers the generated Go type; descriptors without one (built
// at run time, as in tests) get a dynamic message.
func newMessage(d protoreflect.MessageDescriptor) proto.Message {
	if mt, err := protoregistry.GlobalTypes.FindMessageByName(d.FullName()); err == nil {
		return mt.New().Interface()
	}
	return dynamicpb.NewMessage(d)
}
