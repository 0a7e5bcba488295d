package service

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// CheckAddr refuses a listen address net.Listen would refuse for its form
// (host:port, the port a number or a service name): checked with the rest
// of the configuration, a bad one failed the start only after the wait for
// Kafka and the registry, naming no flag.
func CheckAddr(flag, env, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return fmt.Errorf("-%s (%s) %q: not a listen address such as 127.0.0.1:8080 or :8080: %v", flag, env, addr, err)
	}
	return nil
}

// Listen is net.Listen on addr, its error naming the flag and variable
// that set it: "bind: address already in use" alone did not say which of
// a service's listeners it was.
func Listen(flag, env, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-%s (%s): %w", flag, env, err)
	}
	return ln, nil
}

// validPort reports whether p is a port number a dial can use, 1 to
// 65535: url.Parse and the Redis URL parsers take any number.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// Addr is a listen address and the flag and variable that set it.
type Addr struct{ Flag, Env, Addr string }

// CheckAddrsApart refuses two listen addresses of one process on the same
// port where both cannot bind: the same host, or either on every address
// (":8080", "0.0.0.0:8080", "[::]:8080"). Passed with the rest of the
// configuration, the second listener failed the start, "address already
// in use" read as another process holding the port. Port 0 picks a free
// one each; host names are not resolved (the check needs no network).
// Call it after CheckAddr on both.
func CheckAddrsApart(a, b Addr) error {
	ha, pa, errA := net.SplitHostPort(a.Addr)
	hb, pb, errB := net.SplitHostPort(b.Addr)
	if errA != nil || errB != nil {
		return nil // CheckAddr's to report
	}
	na, errA := net.LookupPort("tcp", pa)
	nb, errB := net.LookupPort("tcp", pb)
	if errA != nil || errB != nil || na == 0 || na != nb {
		return nil
	}
	if !strings.EqualFold(ha, hb) && !anyHost(ha) && !anyHost(hb) {
		return nil
	}
	return fmt.Errorf("-%s (%s) %q and -%s (%s) %q: both on port %d: give them different ports", a.Flag, a.Env, a.Addr, b.Flag, b.Env, b.Addr, na)
}

// anyHost reports whether a listen address's host is every address.
func anyHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "" || (ip != nil && ip.IsUnspecified())
}
