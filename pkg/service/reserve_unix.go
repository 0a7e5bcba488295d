//go:build unix

package service

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// Reserved is a listen address bound but not listening: connections to it
// are refused, as to a closed port, yet no other process can take the
// port. A service that must wait (for Kafka, for the registry) before it
// may accept anything holds its port this way: closing a trial listener
// instead let another process take the port during the wait, and the
// service failed only after it.
type Reserved struct {
	fd        int
	flag, env string
}

// Reserve binds addr without listening; its error names the flag and
// variable that set it, as Listen's does.
func Reserve(flag, env, addr string) (*Reserved, error) {
	fd, err := bindOnly(addr)
	if err != nil {
		return nil, fmt.Errorf("-%s (%s): listen tcp %s: %w", flag, env, addr, err)
	}
	return &Reserved{fd: fd, flag: flag, env: env}, nil
}

// Listen starts listening on the reserved address. The Reserved is used
// up either way.
func (r *Reserved) Listen() (net.Listener, error) {
	err := syscall.SetsockoptInt(r.fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err == nil {
		err = syscall.Listen(r.fd, syscall.SOMAXCONN)
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("-%s (%s): listen: %w", r.flag, r.env, err)
	}
	f := os.NewFile(uintptr(r.fd), r.flag)
	defer f.Close() // FileListener holds its own copy of the descriptor
	r.fd = -1
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("-%s (%s): %w", r.flag, r.env, err)
	}
	return ln, nil
}

// Close gives the port back.
func (r *Reserved) Close() {
	if r.fd >= 0 {
		syscall.Close(r.fd)
		r.fd = -1
	}
}

// bindOnly is a TCP socket bound to addr as net.Listen("tcp") binds it
// (an empty or unspecified host: every address, IPv4 and IPv6 when the
// host has IPv6), with SO_REUSEADDR as Go sets it.
func bindOnly(addr string) (int, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, err
	}
	wildcard := ta.IP == nil || ta.IP.IsUnspecified()
	family, sa := syscall.AF_INET, syscall.Sockaddr(nil)
	switch ip4 := ta.IP.To4(); {
	case wildcard:
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: ta.Port}
	case ip4 != nil:
		a := &syscall.SockaddrInet4{Port: ta.Port}
		copy(a.Addr[:], ip4)
		sa = a
	default:
		family = syscall.AF_INET6
		a := &syscall.SockaddrInet6{Port: ta.Port}
		copy(a.Addr[:], ta.IP.To16())
		sa = a
	}
	fd, err := socket(family)
	if err != nil && wildcard {
		// No IPv6 on this host: every IPv4 address, as Go falls back.
		family, sa = syscall.AF_INET, &syscall.SockaddrInet4{Port: ta.Port}
		fd, err = socket(family)
	}
	if err != nil {
		return -1, err
	}
	if family == syscall.AF_INET6 && wildcard {
		// Dual stack, as net.Listen(":port") is.
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	// Bound with SO_REUSEADDR (a restart finds the port's connections in
	// TIME_WAIT), then without: on Linux a socket that is not listening
	// lets any other socket with SO_REUSEADDR bind its port, and Go sets
	// it on every listener. Listen sets it back just before listening.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	return fd, nil
}

func socket(family int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	return fd, nil
}
