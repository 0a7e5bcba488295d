package service

import (
	"fmt"
	"net"
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
