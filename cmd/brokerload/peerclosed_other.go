//go:build !unix

package main

import "syscall"

// peerClosed cannot tell without a non-blocking peek, so it says the
// connection is open; a request on one the server has closed fails.
func peerClosed(syscall.RawConn) bool { return false }
