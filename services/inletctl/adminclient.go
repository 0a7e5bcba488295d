package main

import (
	"net/http"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/flagenv"
)

// adminAuth adds the admin API's bearer token to req: INLET_ADMIN_TOKEN,
// else INLET_ADMIN_READ_TOKEN (each also from its _FILE variant). With
// neither set req goes without one (an admin API with no tokens is off).
func adminAuth(req *http.Request) error {
	for _, env := range []string{admin.EnvWriteToken, admin.EnvReadToken} {
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
