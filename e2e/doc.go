// Package e2e holds end-to-end tests that run the real nodalmerge binary as
// separate processes and drive it the way users do: grpcurl over mutual
// TLS, WebSocket clients over loopback, signals for shutdown. The tests
// build both binaries once in TestMain.
package e2e
