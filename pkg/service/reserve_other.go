//go:build !unix

package service

import "net"

// Reserved is a listen address checked free: off Unix it is not held
// during the wait (a port taken meanwhile fails Listen).
type Reserved struct {
	addr, flag, env string
}

// Reserve checks addr can be listened on, and gives it back.
func Reserve(flag, env, addr string) (*Reserved, error) {
	ln, err := Listen(flag, env, addr)
	if err != nil {
		return nil, err
	}
	ln.Close()
	return &Reserved{addr: addr, flag: flag, env: env}, nil
}

// Listen listens on the address.
func (r *Reserved) Listen() (net.Listener, error) { return Listen(r.flag, r.env, r.addr) }

// Close does nothing: nothing is held.
func (r *Reserved) Close() {}
