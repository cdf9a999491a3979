//go:build unix

package drill

import "syscall"

// Signals that freeze and thaw a node (the pause and resume faults).
const (
	sigPause  = syscall.SIGSTOP
	sigResume = syscall.SIGCONT
)

// groupAttr puts a child in its own process group.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
