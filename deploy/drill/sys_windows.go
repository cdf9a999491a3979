package drill

import "syscall"

// On Windows a process cannot be frozen with a signal: the pause and resume
// faults of the local backend are unsupported there (signal 0 is refused
// by proc.signal); the compose backend pauses containers instead.
const (
	sigPause  syscall.Signal = 0
	sigResume syscall.Signal = 0
)

func childAttr() *syscall.SysProcAttr { return nil }

func groupAttr() *syscall.SysProcAttr { return nil }
