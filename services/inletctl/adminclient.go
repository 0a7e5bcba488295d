package main

import (
	"fmt"
	"net/http"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/service"
)

// adminClient is the client inletctl asks the admin API with: it follows
// no redirect. Go keeps the Authorization header on a redirect to the
// same host (another port, or from https to plain http), so the default
// client sent the admin token wherever a 3xx pointed. The sink and the
// alerter follow none either.
var adminClient = &http.Client{CheckRedirect: refuseRedirect}

// redirectError is a redirect the admin API's address answered, not
// followed.
type redirectError struct {
	Status   string // the 3xx answer's, e.g. "302 Found"
	Location string // where it pointed, without user, password or query
}

func (e *redirectError) Error() string {
	return fmt.Sprintf("answered %s, a redirect to %s, which inletctl does not follow (the admin token would go with it)", e.Status, e.Location)
}

// refuseRedirect is adminClient's CheckRedirect: req is the redirect's,
// resolved against the URL asked.
func refuseRedirect(req *http.Request, _ []*http.Request) error {
	e := &redirectError{Location: service.ShownURL(req.URL.String())}
	if req.Response != nil {
		e.Status = req.Response.Status
	}
	return e
}

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
