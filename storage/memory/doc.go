// Package memory is the embedded, in-process implementation of
// storage.Storage: the development default and the reference the Postgres
// backend is measured against in storage/storagetest.
//
// One mutex guards all state and every atomic operation of the interface is
// one critical section under it. Values go in and come out as copies, so no
// caller can change stored state through a slice, map or pointer it holds.
// Nothing survives the process, and a Store cannot be shared between
// replicas: use storage/postgres for that.
//
// The package imports no other package of the project but storage.
package memory
