//go:build unix

package archive

import "syscall"

// noFollow opens the last component of a path without following a symbolic link (ELOOP instead),
// and a FIFO without blocking.
const noFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
