//go:build unix

package main

import "syscall"

// peerClosed reports whether the server has closed the connection, or
// sent something unasked, since its last answer was read: either way the
// connection cannot carry another request. Nothing reads a conn between
// requests to notice, as a Transport's goroutine would, and a request
// written to a connection the server closed while it was idle would fail
// although the broker never saw it. The peek costs one system call and
// never blocks: the net package's sockets are non-blocking, so a live,
// quiet connection answers EAGAIN.
func peerClosed(raw syscall.RawConn) bool {
	var b [1]byte
	var err error
	if cerr := raw.Read(func(fd uintptr) bool {
		_, _, err = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return true
	}); cerr != nil {
		return true
	}
	return err != syscall.EAGAIN
}
