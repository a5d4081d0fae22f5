package controlplane

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

func TestRegistryFromCompiledProtos(t *testing.T) {
	r, err := NewRegistry()
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	// The SPEC section 4 table, spelled out: name → capability, room
	// scope and mutation of every admin RPC.
	type spec struct {
		method         string
		capability     string
		room, mutation bool
	}
	table := map[string]spec{
		"cluster.status":              {adminv1.ClusterService_GetStatus_FullMethodName, "cluster.read", false, false},
		"cluster.list-members":        {adminv1.ClusterService_ListMembers_FullMethodName, "cluster.read", false, false},
		"cluster.join":                {adminv1.ClusterService_Join_FullMethodName, "cluster.node", false, true},
		"cluster.remove-member":       {adminv1.ClusterService_RemoveMember_FullMethodName, "cluster.admin", false, true},
		"cluster.transfer-leadership": {adminv1.ClusterService_TransferLeadership_FullMethodName, "cluster.admin", false, true},
		"cluster.snapshot":            {adminv1.ClusterService_Snapshot_FullMethodName, "cluster.admin", false, false},
		"keys.list":                   {adminv1.KeyService_ListKeys_FullMethodName, "cluster.read", false, false},
		"keys.rotate":                 {adminv1.KeyService_RotateKey_FullMethodName, "cluster.admin", false, true},
		"keys.retire":                 {adminv1.KeyService_RetireKey_FullMethodName, "cluster.admin", false, true},
		"token.mint-operator":         {adminv1.TokenService_MintOperatorToken_FullMethodName, "cluster.admin", false, false},
		"token.mint-room":             {adminv1.TokenService_MintRoomToken_FullMethodName, "token.mint", true, false},
		"token.revoke":                {adminv1.TokenService_Revoke_FullMethodName, "token.mint", true, true},
		"set-room-key":                {adminv1.RoomService_SetRoomKey_FullMethodName, "room.admin", true, true},
		"rotate-room-key":             {adminv1.RoomService_RotateRoomKey_FullMethodName, "room.admin", true, true},
		"lock-room":                   {adminv1.RoomService_LockRoom_FullMethodName, "room.admin", true, true},
		"unlock-room":                 {adminv1.RoomService_UnlockRoom_FullMethodName, "room.admin", true, true},
		"list-rooms":                  {adminv1.RoomService_ListRooms_FullMethodName, "room.admin", false, false},
		"describe-room":               {adminv1.RoomService_DescribeRoom_FullMethodName, "room.admin", true, false},
		"evict-peer":                  {adminv1.RoomService_EvictPeer_FullMethodName, "room.admin", true, true},
		"compact-room":                {adminv1.RoomService_CompactRoom_FullMethodName, "room.admin", true, false},
		"set-policy":                  {adminv1.PolicyService_SetPolicy_FullMethodName, "policy.admin", true, true},
		"get-policy":                  {adminv1.PolicyService_GetPolicy_FullMethodName, "policy.admin", true, false},
		"start-tick":                  {adminv1.TickService_StartTick_FullMethodName, "tick.admin", true, true},
		"stop-tick":                   {adminv1.TickService_StopTick_FullMethodName, "tick.admin", true, true},
		"list-ticks":                  {adminv1.TickService_ListTicks_FullMethodName, "tick.admin", false, false},
		"topology.place-room":         {adminv1.TopologyService_PlaceRoom_FullMethodName, "topology.admin", true, true},
		"topology.drain-node":         {adminv1.TopologyService_DrainNode_FullMethodName, "topology.admin", false, true},
		"audit.list":                  {adminv1.AuditService_ListEvents_FullMethodName, "cluster.read", false, false},
		"archive.describe":            {adminv1.ArchiveService_DescribeArchive_FullMethodName, "archive.read", true, false},
		"archive.validate":            {adminv1.ArchiveService_ValidateArchive_FullMethodName, "archive.admin", true, false},
		"archive.import":              {adminv1.ArchiveService_ImportArchive_FullMethodName, "archive.admin", true, false},
		"archive.export":              {adminv1.ArchiveService_ExportArchive_FullMethodName, "archive.admin", true, false},
		"projection.read":             {adminv1.QueryService_ReadProjection_FullMethodName, "query.read", true, false},
		"projection.list":             {adminv1.QueryService_ListProjections_FullMethodName, "query.read", true, false},
		"replay.read-range":           {adminv1.QueryService_ReadReplayRange_FullMethodName, "query.read", true, false},
		"query.register":              {adminv1.QueryService_RegisterQuery_FullMethodName, "query.admin", true, true},
		"projection.build":            {adminv1.QueryService_BuildProjection_FullMethodName, "query.admin", true, false},
		"projection.invalidate":       {adminv1.QueryService_InvalidateProjection_FullMethodName, "query.admin", true, false},
		"graph.get-frontier":          {adminv1.QueryService_GetFrontier_FullMethodName, "query.admin", true, false},
		"graph.get-causal-parents":    {adminv1.QueryService_GetCausalParents_FullMethodName, "query.admin", true, false},
		"graph.compute-sync-diff":     {adminv1.QueryService_ComputeSyncDiff_FullMethodName, "query.admin", true, false},
		"topology.create-child":       {adminv1.TopologyService_CreateChild_FullMethodName, "topology.admin", true, true},
		"topology.describe-lineage":   {adminv1.TopologyService_DescribeLineage_FullMethodName, "topology.admin", true, false},
		"topology.list-children":      {adminv1.TopologyService_ListChildren_FullMethodName, "topology.admin", true, false},
		"topology.propose-promotion":  {adminv1.TopologyService_ProposePromotion_FullMethodName, "topology.admin", true, true},
		"topology.validate-promotion": {adminv1.TopologyService_ValidatePromotion_FullMethodName, "topology.admin", true, false},
		"topology.apply-promotion":    {adminv1.TopologyService_ApplyPromotion_FullMethodName, "topology.admin", true, true},
	}
	want := make(map[string]Command, len(table))
	for name, sp := range table {
		want[name] = Command{Name: name, Capability: sp.capability, FullMethod: sp.method, RoomScoped: sp.room, Mutation: sp.mutation}
	}
	for name, w := range want {
		got, ok := r.ByName(name)
		if !ok || got != w {
			t.Errorf("ByName(%q) = %+v, %v; want %+v", name, got, ok, w)
		}
		got, ok = r.Lookup(w.FullMethod)
		if !ok || got != w {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v", w.FullMethod, got, ok, w)
		}
	}
	if _, ok := r.Lookup("/nodalmerge.admin.v1.ClusterService/Nope"); ok {
		t.Error("Lookup of an unknown method succeeded")
	}
	if _, ok := r.ByName("nope"); ok {
		t.Error("ByName of an unknown command succeeded")
	}
	all := r.All()
	if len(all) != len(want) {
		t.Fatalf("All() has %d commands, want %d: %+v", len(all), len(want), all)
	}
	if !slices.IsSortedFunc(all, func(a, b Command) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("All() is not sorted by name: %+v", all)
	}
	all[0].Capability = "mutated"
	if again := r.All(); again[0].Capability == "mutated" {
		t.Error("All() returned the registry's own slice")
	}
	if got, _ := r.ByName("cluster.status"); got.DenyMessage() != "reject.control_plane_forbidden: command=cluster.status requires=cluster.read" {
		t.Errorf("DenyMessage() = %q", got.DenyMessage())
	}
}

// methodSpec describes one synthetic RPC; spec nil means no command option.
type methodSpec struct {
	name            string
	input           string
	spec            *adminv1.CommandSpec
	clientStreaming bool
	serverStreaming bool
}

// syntheticFile builds a descriptor set holding one file of package pkg
// with messages Req{room, note}, NoRoom{note} and one service of methods.
func syntheticFile(t *testing.T, pkg, service string, methods []methodSpec) *protoregistry.Files {
	t.Helper()
	return filesOf(t, syntheticDescriptor(t, pkg, service, methods))
}

// filesOf registers descriptors in a fresh set.
func filesOf(t testing.TB, fds ...protoreflect.FileDescriptor) *protoregistry.Files {
	t.Helper()
	files := new(protoregistry.Files)
	for _, fd := range fds {
		if err := files.RegisterFile(fd); err != nil {
			t.Fatalf("register descriptor %s: %v", fd.Path(), err)
		}
	}
	return files
}

// syntheticDescriptor is the file syntheticFile registers.
func syntheticDescriptor(t testing.TB, pkg, service string, methods []methodSpec) protoreflect.FileDescriptor {
	t.Helper()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String(strings.ReplaceAll(pkg, ".", "/") + "/synthetic_" + strings.ToLower(service) + ".proto"),
		Package: proto.String(pkg),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Req"), Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("room"), Number: proto.Int32(1), Type: str, Label: opt, JsonName: proto.String("room")},
				{Name: proto.String("note"), Number: proto.Int32(2), Type: str, Label: opt, JsonName: proto.String("note")},
			}},
			{Name: proto.String("NoRoom"), Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("note"), Number: proto.Int32(1), Type: str, Label: opt, JsonName: proto.String("note")},
			}},
		},
	}
	svc := &descriptorpb.ServiceDescriptorProto{Name: proto.String(service)}
	for _, m := range methods {
		input := m.input
		if input == "" {
			input = "Req"
		}
		mdp := &descriptorpb.MethodDescriptorProto{
			Name:            proto.String(m.name),
			InputType:       proto.String("." + pkg + "." + input),
			OutputType:      proto.String("." + pkg + ".Req"),
			ClientStreaming: proto.Bool(m.clientStreaming),
			ServerStreaming: proto.Bool(m.serverStreaming),
		}
		if m.spec != nil {
			mdp.Options = &descriptorpb.MethodOptions{}
			proto.SetExtension(mdp.Options, adminv1.E_Command, m.spec)
		}
		svc.Method = append(svc.Method, mdp)
	}
	fdp.Service = []*descriptorpb.ServiceDescriptorProto{svc}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatalf("build synthetic descriptor: %v", err)
	}
	return fd
}

func TestBuildRegistryRejectsBadAnnotations(t *testing.T) {
	ok := func(name, capability string) *adminv1.CommandSpec {
		return &adminv1.CommandSpec{Name: name, Capability: capability}
	}
	tests := []struct {
		name    string
		methods []methodSpec
		wantErr string
	}{
		{
			name:    "method without the option",
			methods: []methodSpec{{name: "Good", spec: ok("x.good", "x.read")}, {name: "Bare"}},
			wantErr: "method /test.admin.v1.Svc/Bare has no (nodalmerge.admin.v1.command) option",
		},
		{
			name:    "empty command name",
			methods: []methodSpec{{name: "A", spec: ok("", "x.read")}},
			wantErr: "command name \"\" is empty or padded",
		},
		{
			name:    "padded command name",
			methods: []methodSpec{{name: "A", spec: ok(" x.a", "x.read")}},
			wantErr: "is empty or padded",
		},
		{
			name:    "empty capability",
			methods: []methodSpec{{name: "A", spec: ok("x.a", "")}},
			wantErr: "command x.a has an empty or padded capability",
		},
		{
			name:    "duplicate command name",
			methods: []methodSpec{{name: "A", spec: ok("x.same", "x.read")}, {name: "B", spec: ok("x.same", "x.admin")}},
			wantErr: "methods /test.admin.v1.Svc/A and /test.admin.v1.Svc/B share the command name \"x.same\"",
		},
		{
			name: "room-scoped without a room field",
			methods: []methodSpec{{name: "A", input: "NoRoom",
				spec: &adminv1.CommandSpec{Name: "x.a", Capability: "x.admin", RoomScoped: true}}},
			wantErr: "room-scoped command x.a needs a singular string field \"room\" in test.admin.v1.NoRoom",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := syntheticFile(t, "test.admin.v1", "Svc", tt.methods)
			r, err := buildRegistry(files, "test.admin.v1")
			if err == nil {
				t.Fatalf("buildRegistry succeeded with %d commands; want an error containing %q", len(r.All()), tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("buildRegistry error = %q; want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestBuildRegistryAcceptsWellFormedAndRejectsEmptyPackage(t *testing.T) {
	files := syntheticFile(t, "test.admin.v1", "Svc", []methodSpec{
		{name: "Read", spec: &adminv1.CommandSpec{Name: "x.read", Capability: "x.read"}},
		{name: "Write", spec: &adminv1.CommandSpec{Name: "x.write", Capability: "x.admin", RoomScoped: true, Mutation: true},
			clientStreaming: true, serverStreaming: true},
	})
	r, err := buildRegistry(files, "test.admin.v1")
	if err != nil {
		t.Fatalf("buildRegistry: %v", err)
	}
	want := Command{Name: "x.write", Capability: "x.admin", FullMethod: "/test.admin.v1.Svc/Write", RoomScoped: true, Mutation: true}
	if got, ok := r.Lookup("/test.admin.v1.Svc/Write"); !ok || got != want {
		t.Errorf("Lookup = %+v, %v; want %+v", got, ok, want)
	}
	if _, err := buildRegistry(files, "other.v1"); err == nil || !strings.Contains(err.Error(), "no services found in package other.v1") {
		t.Errorf("buildRegistry of an empty package: err = %v; want no services found", err)
	}
}
