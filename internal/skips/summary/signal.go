package main

import "syscall"

// syscallZero is signal 0: it checks that a process exists, sending
// nothing.
var syscallZero = syscall.Signal(0)
