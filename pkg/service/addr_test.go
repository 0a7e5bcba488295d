package service

import (
	"net"
	"strings"
	"testing"
)

// TestCheckAddrAndListen: a malformed listen address is refused naming
// its flag and variable, and so is one in use.
func TestCheckAddrAndListen(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8080", ":8080", "localhost:0", "[::1]:9090", "127.0.0.1:http"} {
		if err := CheckAddr("ingest-addr", "INLET_INGEST_ADDR", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"garbage", "127.0.0.1", "127.0.0.1:-1", "127.0.0.1:70000", "127.0.0.1:nosuchservice"} {
		if err := CheckAddr("ingest-addr", "INLET_INGEST_ADDR", bad); err == nil || !strings.Contains(err.Error(), "-ingest-addr (INLET_INGEST_ADDR)") {
			t.Errorf("%s: %v, want refused naming the flag", bad, err)
		}
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, err := Listen("admin-addr", "INLET_ADMIN_ADDR", taken.Addr().String()); err == nil || !strings.Contains(err.Error(), "-admin-addr (INLET_ADMIN_ADDR)") {
		t.Errorf("address in use: %v, want the flag named", err)
	}
}
