// Package e2e holds end-to-end tests that run the real nodalmerge binary as
// separate processes and drive it the way users do: grpcurl over mutual
// TLS, WebSocket clients over loopback, signals for shutdown. The tests
// build both binaries once in TestMain.
//
// # Security suite
//
// The security_*_test.go files turn the deployment checklist of the
// operator page (security and auth) into tests, each on its own real
// three-node cluster (startSecCluster: certificates from `nodalmerge cert`,
// a metrics listener per node, optional wss:// and extra flags):
//
//   - TestChecklist1_ConfirmWSSPathAndTLSTermination: wss:// with a
//     certificate from the cluster CA, chain verified, ws:// refused, a
//     renewed certificate served without restart.
//   - TestChecklist2_LockedRoomHandshakeWithLeastPrivilegeToken: own-keys
//     and cluster locks; classless and grants-only tokens admitted on every
//     node, read:/write: grants enforced; every refusal reason with 1008.
//   - TestChecklist3_CapabilityDeniesForUnauthorizedCommands: every
//     registered command on both doors, denied without its capability
//     (exact deny, ErrorInfo, socket open) and answered with it; audited.
//   - TestChecklist4_MetricsAndAdminNotPublic: 404 for /metrics and
//     friends on the public port, no gRPC there, admin refuses clients
//     without a cluster certificate.
//   - TestChecklist5_TokenExpiryAndReconnectRefresh: 4002 at expiry, the
//     metric, refusal of the expired token, catch-up after refresh.
//   - TestChecklist6_RateLimitsUnderSyntheticAbuse: flooders get 4008, a
//     well-behaved writer and reader are untouched.
//   - TestRevocationClosesSessionsOnEveryNode: by token id, by peer (until),
//     by key retirement and by a room key's grace ending: 4003 within 1 s
//     on every node, refused at hello afterwards.
//   - TestRotationWithoutDowntime: keys.rotate with prepublish and grace,
//     old tokens valid until the grace ends, audit events with key ids.
//   - TestSecretsNeverLeak: logs, audit trails, metrics and client errors
//     searched for every secret a full scenario handled.
//
// Run them with: go test -race -run 'Checklist|Revocation|Rotation|Secrets' ./e2e/
package e2e
