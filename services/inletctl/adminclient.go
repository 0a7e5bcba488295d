package main

import (
	"net/http"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/flagenv"
)

// adminAuth adds the admin API's bearer token to req: for a read (GET,
// HEAD) INLET_ADMIN_READ_TOKEN, else INLET_ADMIN_TOKEN, so a read carries
// the write token only when it is the one set; for anything else the other
// way round (each also from its _FILE variant). With neither set req goes
// without one (an admin API with no tokens is off).
func adminAuth(req *http.Request) error {
	order := []string{admin.EnvWriteToken, admin.EnvReadToken}
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		order = []string{admin.EnvReadToken, admin.EnvWriteToken}
	}
	for _, env := range order {
		tok, err := flagenv.Secret(env)
		if err != nil {
			return err
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
			return nil
		}
	}
	return nil
}
