package drill

import "syscall"

// childAttr puts a child in its own process group (a terminal's Ctrl-C
// reaches the drill only, which stops its children in order) and kills it
// if the drill itself dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
