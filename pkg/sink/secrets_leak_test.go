package sink

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A sink's answer goes into the error history (DLQ topic, logs, alerts).
// These tests make a sink echo its credentials back in the ways real
// servers do and check that no part of a canary survives in the error.

const (
	leakAuth = "CANARY-sinkauth/+?#@:%&<>-7f3a=="
	leakKey  = "CANARY-sinkkey-0123456789abcdef"
	leakPath = "CANARY-sinkpath-7f3a"
	leakQry  = "CANARY-sinkquery-7f3a"
	leakPass = "CANARY-sinkpass-7f3a"
)

// sinkEchoing starts a sink answering 500 with answer(r) and returns a
// sink.HTTP sending canary credentials to it.
func sinkEchoing(t *testing.T, answer func(r *http.Request) string) *HTTP {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(answer(r)))
	}))
	t.Cleanup(srv.Close)
	s, err := NewHTTP(HTTPConfig{
		URL:     strings.Replace(srv.URL, "://", "://svc:"+leakPass+"@", 1) + "/hooks/" + leakPath + "?token=" + leakQry,
		Timeout: 5 * time.Second,
		Headers: map[string]string{"Authorization": "Bearer " + leakAuth, "X-Api-Key": leakKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func assertNoCanary(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: a 500 was taken as delivered", what)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("svc:" + leakPass))
	if strings.Contains(err.Error(), "CANARY") || strings.Contains(err.Error(), basic) {
		t.Errorf("%s: the error quotes (part of) a secret: %v", what, err)
	}
}

func send(s *HTTP) error {
	return s.Send(context.Background(), []byte(`{}`), "application/json", "k", "c")
}

// TestSinkAnswerCutInsideSecret guards the 256-byte excerpt: a secret that
// straddled the cut was not redacted, and its first bytes stayed in the
// error history.
func TestSinkAnswerCutInsideSecret(t *testing.T) {
	for _, secret := range []string{leakAuth, leakKey} {
		for pad := 256 - len(secret) + 1; pad < 256; pad++ {
			s := sinkEchoing(t, func(*http.Request) string {
				return strings.Repeat(".", pad) + secret + " and more text after it"
			})
			assertNoCanary(t, "secret at byte "+strconv.Itoa(pad), send(s))
		}
	}
}

// TestSinkAnswerEchoesEncodedSecret guards redaction of a credential the
// sink quotes escaped: JSON (Go's and PHP's "\/"), URL- or HTML-encoded.
func TestSinkAnswerEchoesEncodedSecret(t *testing.T) {
	jsonGo := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	for name, enc := range map[string]func(string) string{
		"json":        jsonGo,
		"json php":    func(v string) string { return strings.ReplaceAll(jsonGo(v), "/", `\/`) },
		"query":       url.QueryEscape,
		"path":        url.PathEscape,
		"html":        func(v string) string { return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(v) },
		"header json": func(string) string { return jsonGo("Bearer " + leakAuth) },
	} {
		s := sinkEchoing(t, func(r *http.Request) string {
			return `{"error":"bad key ` + enc(leakAuth) + `"}`
		})
		assertNoCanary(t, name, send(s))
	}
}

// TestSinkAnswerEchoesRequestURL guards the sink URL's path and query (a
// token often sits there; errors name only scheme and host): a 404 page
// such as "Cannot POST /hooks/<token>" put them into the error history.
func TestSinkAnswerEchoesRequestURL(t *testing.T) {
	for name, answer := range map[string]func(r *http.Request) string{
		"path":     func(r *http.Request) string { return "Cannot POST " + r.URL.Path },
		"raw uri":  func(r *http.Request) string { return "no route for " + r.RequestURI },
		"query":    func(r *http.Request) string { return "bad token " + r.URL.Query().Get("token") },
		"full url": func(r *http.Request) string { return "upstream http://" + r.Host + r.RequestURI + " failed" },
	} {
		assertNoCanary(t, name, send(sinkEchoing(t, answer)))
	}
	// Without an Authorization header, the URL's user and password are
	// sent as basic auth.
	for name, answer := range map[string]func(r *http.Request) string{
		"basic":    func(r *http.Request) string { return "refused " + r.Header.Get("Authorization") },
		"password": func(r *http.Request) string { _, pw, _ := r.BasicAuth(); return "wrong password " + pw },
	} {
		s := sinkEchoing(t, answer)
		delete(s.cfg.Headers, "Authorization")
		assertNoCanary(t, name, send(s))
	}
}

// TestSinkAnswerEchoesOtherCredentialForms: a key given as the URL's user
// alone (sent as basic auth with an empty password), the decoded parts of
// a configured Basic header, and a token path segment quoted alone are
// redacted too; route words in the path are not.
func TestSinkAnswerEchoesOtherCredentialForms(t *testing.T) {
	const userKey = "CANARY-sk_live_userkey"
	const basicPass = "CANARY-basicpass-7f3a"
	for name, tt := range map[string]struct {
		url     func(srv string) string
		headers map[string]string
		answer  func(r *http.Request) string
	}{
		"user alone, as basic auth": {
			url:    func(srv string) string { return strings.Replace(srv, "://", "://"+userKey+"@", 1) + "/hook" },
			answer: func(r *http.Request) string { return "refused " + r.Header.Get("Authorization") },
		},
		"user alone, decoded": {
			url:    func(srv string) string { return strings.Replace(srv, "://", "://"+userKey+"@", 1) + "/hook" },
			answer: func(r *http.Request) string { u, _, _ := r.BasicAuth(); return "unknown key " + u },
		},
		"basic header, decoded": {
			url:     func(srv string) string { return srv + "/hook" },
			headers: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:"+basicPass))},
			answer:  func(r *http.Request) string { _, pw, _ := r.BasicAuth(); return "wrong password " + pw },
		},
		"path segment alone": {
			url: func(srv string) string { return srv + "/hooks/" + leakPath },
			answer: func(r *http.Request) string {
				return `{"error":"unknown webhook ` + r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:] + `"}`
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(tt.answer(r)))
			}))
			defer srv.Close()
			s, err := NewHTTP(HTTPConfig{URL: tt.url(srv.URL), Timeout: 5 * time.Second, Headers: tt.headers})
			if err != nil {
				t.Fatal(err)
			}
			err = send(s)
			basic := base64.StdEncoding.EncodeToString([]byte(userKey + ":"))
			if err == nil || strings.Contains(err.Error(), "CANARY") || strings.Contains(err.Error(), basic) {
				t.Fatalf("the error quotes (part of) a secret: %v", err)
			}
			if name == "path segment alone" && !strings.Contains(err.Error(), "unknown webhook") {
				t.Errorf("route words redacted too: %v", err)
			}
		})
	}
}
