package gen

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

// Provider kinds the generator signs for (the sources file's kinds).
const (
	KindStripe           = "stripe"
	KindGitHub           = "github"
	KindShopify          = "shopify"
	KindStandardWebhooks = "standard-webhooks"
)

// Secrets are the signing secrets, one per dev-stack source, plus the
// billing batch token.
type Secrets struct {
	Stripe, GitHub, Shopify, Billing, BillingToken string
}

// DevSecrets are the secrets services/dev uses when the environment sets
// none, so a run works against `make run` as it is.
func DevSecrets() Secrets {
	return Secrets{
		Stripe:       "whsec_dev_stripe_secret_change_me",
		GitHub:       "dev-github-secret",
		Shopify:      "dev-shopify-secret",
		Billing:      "whsec_ZGV2LWJpbGxpbmctc2VjcmV0LWNoYW5nZS1tZQ==",
		BillingToken: "dev-billing-token",
	}
}

// SecretsFromEnv reads the variables the dev stack and the sources file use
// (STRIPE_WEBHOOK_SECRET, GITHUB_WEBHOOK_SECRET, SHOPIFY_WEBHOOK_SECRET,
// BILLING_WHSEC, BILLING_EVENTS_TOKEN), each defaulting to DevSecrets.
func SecretsFromEnv(getenv func(string) string) Secrets {
	if getenv == nil {
		getenv = os.Getenv
	}
	s := DevSecrets()
	for env, dst := range map[string]*string{
		"STRIPE_WEBHOOK_SECRET":  &s.Stripe,
		"GITHUB_WEBHOOK_SECRET":  &s.GitHub,
		"SHOPIFY_WEBHOOK_SECRET": &s.Shopify,
		"BILLING_WHSEC":          &s.Billing,
		"BILLING_EVENTS_TOKEN":   &s.BillingToken,
	} {
		if v := getenv(env); v != "" {
			*dst = v
		}
	}
	return s
}

// Config is one run.
type Config struct {
	// Target is the ingest base URL. Default http://127.0.0.1:8080.
	Target string
	// AdminURL is the admin/metrics base URL, scraped during the run and
	// used by the verification. Empty: no scraping. Default
	// http://127.0.0.1:9090 in the command.
	AdminURL string
	// AllowRemote permits a target or admin URL that is not loopback.
	AllowRemote bool
	// Scenario names the scenario (see Scenarios). Default steady.
	Scenario string
	// Rate is the arrival rate in requests per second (for ramp, the final
	// rate; for burst, the base rate). Default: the scenario's DefaultRate.
	Rate float64
	// Duration bounds the schedule. Default 20s, at most 10m.
	Duration time.Duration
	// MaxRequests bounds the number of requests. Default 100000.
	MaxRequests int
	// MaxInFlight bounds concurrent requests; a request whose intended
	// time has come waits for a slot, and the wait counts in its latency.
	// Default 2000.
	MaxInFlight int
	// Timeout is the per-request timeout. Default 10s; negative is refused.
	Timeout time.Duration
	// BodyLimit is the sources' max_body, for the large scenario. Default
	// 1 MiB; negative is refused.
	BodyLimit int
	// Secrets sign the deliveries.
	Secrets Secrets
	// RunID prefixes every event id, so one run's events are told apart on
	// topics that hold earlier runs. Default: derived from the start time.
	RunID string
	// Seed makes payloads and shuffles reproducible. Default 1.
	Seed int64
}

func (c *Config) defaults() {
	if c.Target == "" {
		c.Target = "http://127.0.0.1:8080"
	}
	if c.Scenario == "" {
		c.Scenario = "steady"
	}
	if c.Rate == 0 {
		c.Rate = Scenarios[c.Scenario].DefaultRate
	}
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if c.MaxRequests == 0 {
		c.MaxRequests = 100000
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 2000
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = 1 << 20
	}
	if c.Secrets == (Secrets{}) {
		c.Secrets = DevSecrets()
	}
	if c.RunID == "" {
		c.RunID = "lt" + time.Now().UTC().Format("0102T150405")
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// ErrRemoteTarget is returned by Validate for a target that is not on the
// loopback interface when AllowRemote is false.
var ErrRemoteTarget = errors.New("gen: target is not loopback (pass -allow-remote to load a remote host)")

// Validate applies the defaults and checks the bounds.
func (c *Config) Validate() error {
	c.defaults()
	if _, ok := Scenarios[c.Scenario]; !ok {
		return fmt.Errorf("gen: unknown scenario %q (want one of %v)", c.Scenario, ScenarioNames())
	}
	switch {
	case c.Rate < 0 || c.Rate > 100000:
		return fmt.Errorf("gen: rate %v out of (0, 100000]", c.Rate)
	case c.Duration < 0 || c.Duration > 10*time.Minute:
		return fmt.Errorf("gen: duration %v out of (0, 10m]", c.Duration)
	case c.MaxRequests < 0 || c.MaxInFlight < 0:
		return errors.New("gen: max-requests and max-inflight must be positive")
	case c.Timeout < 0:
		return fmt.Errorf("gen: timeout %v must be positive", c.Timeout)
	case c.BodyLimit < 0:
		return fmt.Errorf("gen: body-limit %d must be positive", c.BodyLimit)
	}
	for _, u := range []string{c.Target, c.AdminURL} {
		if u == "" {
			continue
		}
		if err := checkLoopback(u, c.AllowRemote); err != nil {
			return err
		}
	}
	return nil
}

// checkLoopback refuses a URL whose host is not a loopback address or
// "localhost", unless allowed.
func checkLoopback(raw string, allow bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("gen: %q is not an http(s) URL", raw)
	}
	if allow {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrRemoteTarget, raw)
}
