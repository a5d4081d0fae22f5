// Package pki makes and loads the cluster's TLS material: a private cluster
// CA, node certificates (which mark their holder as a cluster node) and
// operator client certificates, and it builds the mutual-TLS configurations
// used on the internal admin and Raft listeners.
//
// A certificate's role is carried by a single URI SAN,
// nodalmerge://node/<node-id> or nodalmerge://operator/<name>, so that
// authorization never depends on parsing free-form subject names.
package pki
