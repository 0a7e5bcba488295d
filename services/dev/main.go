// Command dev runs the whole of Inlet in one process on embedded
// infrastructure (in-process Kafka, schema registry and Redis) for `make run`
// and demos. Data lives under -data-dir, so events survive a restart.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/alert"
	"github.com/inletdev/inlet/pkg/devstack"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/handlers"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/ingest"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// devSecrets are used for the sample sources when the environment does not
// set them: `make run` must work on a fresh machine. They are for local use
// only and printed on purpose.
var devSecrets = map[string]string{
	"STRIPE_WEBHOOK_SECRET":  "whsec_dev_stripe_secret_change_me",
	"GITHUB_WEBHOOK_SECRET":  "dev-github-secret",
	"SHOPIFY_WEBHOOK_SECRET": "dev-shopify-secret",
	"BILLING_WHSEC":          "whsec_ZGV2LWJpbGxpbmctc2VjcmV0LWNoYW5nZS1tZQ==",
	"BILLING_EVENTS_TOKEN":   "dev-billing-token",
}

// stackStarted runs once the embedded infrastructure is up, before the
// topics and the envelope schema are set up on it (tests signal there).
var stackStarted = func(context.Context) {}

func main() {
	err := run(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp): // -h: usage was asked for, and printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

type config struct {
	dataDir      string
	sources      string
	kafkaPort    int
	registryPort int
	redisPort    int
	redis        service.RedisConfig // URL empty: the embedded miniredis
	adminAddr    string
	prefix       string
	ingest       ingest.Config
	processor    processor.Config
	alert        alert.Config
	log          service.LogConfig
}

func run(args []string) error {
	fs := flagenv.New("dev")
	var c config
	fs.String(&c.dataDir, "data-dir", "INLET_DATA_DIR", ".inlet", "where the embedded Kafka log, registry schemas and Redis keys live")
	fs.String(&c.sources, "sources", "INLET_SOURCES", "deploy/sources.example.yaml", "sources file")
	fs.Int(&c.kafkaPort, "kafka-port", "INLET_DEV_KAFKA_PORT", 9092, "embedded Kafka port")
	fs.Int(&c.registryPort, "registry-port", "INLET_DEV_REGISTRY_PORT", 8081, "embedded schema registry port")
	fs.Int(&c.redisPort, "redis-port", "INLET_DEV_REDIS_PORT", 6390, "embedded Redis (miniredis) port")
	fs.String(&c.redis.URL, "redis-url", "INLET_REDIS_URL", "", "use this Redis instead of the embedded one; rediss:// for TLS (password may be in the URL or REDIS_PASSWORD[_FILE])")
	fs.String(&c.adminAddr, "admin-addr", "INLET_ADMIN_ADDR", "127.0.0.1:9090", "admin and metrics listen address")
	fs.String(&c.prefix, "topic-prefix", "INLET_TOPIC_PREFIX", "inlet", "topic name prefix")
	c.ingest.RegisterFlags(fs)
	c.log.RegisterFlags(fs)
	// The processor's tuning is read as the processor reads it; its group
	// and instance id are the stack's, and its -drain-timeout is ingest's
	// (the same INLET_DRAIN_TIMEOUT).
	c.processor.RegisterTuningFlags(fs)
	c.alert.RegisterFlags(fs)
	if err := fs.ParseFlagsOnly(args); err != nil {
		return err
	}
	c.processor.Group, c.processor.InstanceID = "inlet-processor", "dev"
	c.processor.DrainTimeout = c.ingest.DrainTimeout
	// Refused before anything starts.
	if err := errors.Join(c.ingest.Validate(), c.processor.Validate()); err != nil {
		return err
	}
	log, err := c.log.Logger(os.Stderr)
	if err != nil {
		return err
	}
	if err := c.alert.LoadSecrets(); err != nil {
		return err
	}
	if err := c.alert.Validate(); err != nil {
		return err
	}
	for k, v := range devSecrets {
		if os.Getenv(k) == "" && os.Getenv(k+"_FILE") == "" {
			os.Setenv(k, v)
		}
	}
	madeToken := adminToken()
	sources, err := source.Load(c.sources)
	if err != nil {
		return fmt.Errorf("-sources (INLET_SOURCES): %w", err)
	}
	// Before anything starts, so a bad -redis-url stops nothing half-started.
	ropt, err := c.redisOptions()
	if err != nil {
		return err
	}
	// Every other setting is checked here too, before the data directory
	// is touched: a start refused for its settings used to leave a Kafka
	// log, registry.json and a Redis snapshot behind, as if it had run.
	if err := c.ingest.CheckSources(sources); err != nil {
		return err
	}
	if _, err := processor.RetryPolicies(sources, kafka.DefaultRetryTiers); err != nil {
		return err
	}
	rt, err := handlers.Router(sources)
	if err != nil {
		return err
	}
	tok, err := admin.TokensFromEnv()
	if err != nil {
		return err
	}
	if err := c.checkAddrs(); err != nil {
		return err
	}
	// Ports taken are found before the data directory is touched too: the
	// HTTP listeners are held from here, the stack's ports tried.
	ln, err := service.Listen("ingest-addr", "INLET_INGEST_ADDR", c.ingest.Addr)
	if err != nil {
		return portHint(err, "stop it, or pick another address: INLET_INGEST_ADDR=127.0.0.1:18080 make run")
	}
	defer ln.Close()
	adminLn, err := service.Listen("admin-addr", "INLET_ADMIN_ADDR", c.adminAddr)
	if err != nil {
		return portHint(err, "stop it, or pick another address: INLET_ADMIN_ADDR=127.0.0.1:19090 make run")
	}
	defer adminLn.Close()
	if err := c.tryPorts(); err != nil {
		return err
	}
	kcfg := kafka.Config{ClientID: "inlet-dev", TopicPrefix: c.prefix, Partitions: 3, ReplicationFactor: -1}
	if _, err := kcfg.ClientOpts(nil); err != nil { // the brokers are the stack's, set once it runs
		return err
	}
	ctx, stop := service.SignalContext(log)
	defer stop()
	tel, err := telemetry.New(ctx, "inlet-dev", telemetry.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()

	if err := os.MkdirAll(c.dataDir, 0o755); err != nil {
		return err
	}
	stack, err := devstack.Start(devstack.Config{
		DataDir: c.dataDir, KafkaPort: c.kafkaPort, RegistryPort: c.registryPort,
		RedisPort: c.redisPort, RedisURL: c.redis.URL, Log: log,
	})
	if err != nil {
		// A taken data directory says so itself (which stack holds it, and
		// -data-dir); other stacks and ports are the likely cause only of a
		// port in use, not of, say, an unreadable Redis snapshot.
		return portHint(err, portsAdvice)
	}
	defer stack.Close()
	stackStarted(ctx)

	kcfg.Brokers = stack.Brokers
	topics := kafka.TopicNames(c.prefix, kafka.DefaultRetryTiers)
	// A signal during the start (Ctrl-C just after make run) stops it as
	// one after it does, exit 0: the steps below that take ctx end with
	// its "context canceled" (the topics' once per topic), not a failure.
	stopped := func(err error) error {
		if ctx.Err() != nil {
			log.Info("stopped during the start")
			return nil
		}
		return err
	}
	if err := service.EnsureTopics(ctx, &kcfg, topics, log); err != nil {
		return stopped(err)
	}
	reg, err := embeddedRegistry(stack.RegistryURL)
	if err != nil {
		return err
	}
	codec, err := envelope.NewCodec(ctx, reg, topics.RawSubject())
	if err != nil {
		return stopped(err)
	}
	opts, err := kcfg.ClientOpts(log)
	if err != nil {
		return err
	}
	opts = append(opts, tel.KafkaOpts()...) // franz-go's client metrics, as the services have
	producers, err := ingest.NewProducers(c.ingest.Producers, opts...)
	if err != nil {
		return err
	}
	defer producers.Close()
	if ropt == nil {
		if ropt, err = service.ParseRedisURL(stack.RedisURL); err != nil {
			return err
		}
	}
	service.RedisClientLog(log)
	rdb := ropt.NewClient()
	defer rdb.Close()
	if err := tel.InstrumentRedis(rdb); err != nil {
		return err
	}
	c.alert.Log = log
	alerter := alert.New(c.alert)
	if err := alerter.Instrument(tel.Meter); err != nil {
		return err
	}
	// Stopped after the processor, which may still raise alerts while it
	// drains: what is pending then gets its one try.
	alerts := goTask(func(ctx context.Context) error { alerter.Run(ctx); return nil })
	defer alerts.Stop()
	hist := history.New(rdb, "inlet:", 7*24*time.Hour)
	st := store.New(rdb, c.processor.StoreOpts()...)
	if err := service.CheckRedis(ctx, st, log); err != nil {
		return stopped(err)
	}
	if ctx.Err() != nil {
		return stopped(nil) // nothing runs yet: no banner, no "ready"
	}
	proc, err := processor.New(c.processor, processor.Deps{
		KafkaOpts: opts, Topics: topics, Sources: sources, Router: rt, Registry: reg, Codec: codec,
		Store: st, Alerter: alerter, Log: log,
		Telemetry: tel, History: hist,
	})
	if err != nil {
		return err
	}
	// Any return from here on stops the processor and waits for it before
	// the deferred closes above (Redis, producers, the stack) run under it.
	procTask := goTask(proc.Run)
	defer procTask.Stop()

	q, err := ops.New(opts, topics, codec)
	if err != nil {
		return err
	}
	defer q.Close()
	q.SetLogger(log)
	api, err := admin.New(tok, admin.Deps{Queues: q, Topics: topics, Sources: sources.Names(), Trace: hist.HandlerWith(q.TraceEntries), Log: log, Meter: tel.Meter})
	if err != nil {
		return err
	}

	srv, err := ingest.New(c.ingest, ingest.Deps{Sources: sources, Codec: codec, RawTopic: topics.Raw, Kafka: producers, SR: reg.SR(), Log: log, Telemetry: tel})
	if err != nil {
		return err
	}
	adminSrv := service.AdminServer(adminMux(srv.Handler(), tel, api))

	errc := make(chan error, 2)
	go func() {
		if err := srv.Serve(ln); err != nil {
			errc <- fmt.Errorf("ingest server: %w", err)
		}
	}()
	go func() {
		if err := adminSrv.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin server: %w", err)
		}
	}()

	ingestURL := "http://" + ln.Addr().String()
	fmt.Print(banner{
		dataDir: c.dataDir, ingestURL: ingestURL, adminAddr: adminLn.Addr().String(),
		brokers: strings.Join(stack.Brokers, ","), prefix: c.prefix, registryURL: stack.RegistryURL,
		redisURL: stack.RedisURL, curl: sampleCurl(sources, ingestURL, time.Now()),
		raw: topics.Raw, processed: topics.Processed, sources: c.sources, token: madeToken,
	})
	log.Info("ready", "ingest", ingestURL, "sources", sources.Names())

	return lifecycle{
		log: log, drain: c.ingest.DrainTimeout, served: errc,
		ingest: srv, admin: adminSrv, proc: procTask, alerts: alerts,
	}.run(ctx)
}

// portHint adds to err, when a port was in use, that another `make run`
// may hold it and what to do (hint); any other error is returned as it is.
func portHint(err error, hint string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w (is another `make run` running? %s)", err, hint)
	}
	return err
}

// embeddedRegistry is a client for the embedded schema registry at url. It
// takes no credentials: INLET_SCHEMA_REGISTRY_* set for another registry
// must neither reach this one nor stop the stack.
func embeddedRegistry(url string) (*registry.Client, error) {
	cl, err := sr.NewClient(sr.URLs(url), sr.UserAgent("inlet"))
	if err != nil {
		return nil, err
	}
	return registry.New(cl), nil
}

// adminToken makes up a token for the admin API, which needs one, and sets
// it as INLET_ADMIN_TOKEN, unless the operator set their own
// (INLET_ADMIN_TOKEN[_FILE]). It returns the token made up, for the banner
// to print, or "": one the operator set is theirs and never printed.
func adminToken() string {
	if os.Getenv(admin.EnvWriteToken) != "" || os.Getenv(admin.EnvWriteToken+"_FILE") != "" {
		return ""
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	os.Setenv(admin.EnvWriteToken, tok)
	return tok
}

// banner is what run prints once everything listens: where each part is,
// a sample event to send and how to operate the stack. It prints no secret
// the operator chose.
type banner struct {
	dataDir, ingestURL, adminAddr, brokers, prefix, registryURL string
	// redisURL is the -redis-url given, or the embedded Redis's; shown
	// without its password, and left out of the export line if it has one.
	redisURL       string
	curl           string // sampleCurl
	raw, processed string // topics
	sources        string // the sources file
	// token is the admin API token the dev stack made up for this run,
	// printed to be pasted; empty when the operator set their own
	// (INLET_ADMIN_TOKEN[_FILE]), which is not printed.
	token string
}

func (b banner) String() string {
	var w strings.Builder
	fmt.Fprintf(&w, `
Inlet is running (embedded infrastructure, data in %s)
  ingest:          %s   (POST /webhooks/{source}, POST /events/{source})
  admin/metrics:   http://%s   (/metrics, /healthz, /readyz, /v1/trace/{correlation-id})
  kafka:           %s   (topics %s.*)
  schema registry: %s
  redis:           %s

Send a signed sample event (paste it into another terminal):

%s

See it on the raw topic, then processed (Avro, decoded through the registry):
  go run ./services/inletctl -kafka-brokers %[4]s -schema-registry-url %[6]s tail %[9]s
  go run ./services/inletctl -kafka-brokers %[4]s -schema-registry-url %[6]s tail %[10]s

`, b.dataDir, b.ingestURL, b.adminAddr, b.brokers, b.prefix, b.registryURL, shownURL(b.redisURL),
		b.curl, b.raw, b.processed)
	// A pasted export sets what it says: never a placeholder, nor an
	// empty INLET_ADMIN_TOKEN= over the operator's own.
	head := "Operate it:"
	// INLET_ADMIN_URL too: without it inletctl trace asks 127.0.0.1:9090,
	// which with -admin-addr elsewhere is nothing, or another stack.
	first := []string{"INLET_ADMIN_URL=" + adminURL(b.adminAddr), "INLET_KAFKA_BROKERS=" + b.brokers, "INLET_SCHEMA_REGISTRY_URL=" + b.registryURL}
	second := []string{"INLET_SOURCES=" + b.sources}
	var notes []string
	if b.token != "" {
		head = "Operate it (the admin API token is made up for this run):"
		first = append([]string{admin.EnvWriteToken + "=" + b.token}, first...)
	} else {
		notes = append(notes, "The admin API token is the one you configured ("+admin.EnvWriteToken+" or "+admin.EnvWriteToken+"_FILE), not printed: set it where you run these.")
	}
	if hasPassword(b.redisURL) {
		notes = append(notes, "INLET_REDIS_URL is not printed, as the -redis-url you gave holds a password: export it yourself with that URL.")
	} else {
		second = append([]string{"INLET_REDIS_URL=" + b.redisURL}, second...)
	}
	fmt.Fprintf(&w, `%s
  export %s
  export %s
  go run ./services/inletctl trace <correlation_id from the answer>
  go run ./services/inletctl dlq ls --group
`, head, strings.Join(first, " "), strings.Join(second, " "))
	for _, n := range notes {
		w.WriteString(n + "\n")
	}
	w.WriteString("\nCtrl-C stops everything.\n")
	return w.String()
}

// adminURL is the URL a client on this machine reaches the admin listener
// at, from the address it listens on: one listening on every interface
// (0.0.0.0, ::) is asked on 127.0.0.1.
func adminURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// hasPassword reports whether the Redis URL s holds a password; one that
// does not parse might.
func hasPassword(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return true
	}
	_, ok := u.User.Password()
	return ok
}

// shownURL is a Redis URL as the banner prints it: with its password, if
// any, replaced by xxxxx (secrets are never printed; whoever gave the URL
// has it).
func shownURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(the URL given with -redis-url)"
	}
	return u.Redacted()
}

// redisOptions are the client options for the Redis given with -redis-url,
// built by service.RedisConfig as the processor builds them: REDIS_PASSWORD
// [_FILE] applies, and an error never quotes the URL, which may hold a
// password. Nil without -redis-url: the embedded miniredis has no password,
// so a REDIS_PASSWORD meant for another Redis must not reach it.
func (c *config) redisOptions() (*service.RedisOptions, error) {
	if c.redis.URL == "" {
		return nil, nil
	}
	opt, err := c.redis.Parse()
	if err != nil {
		return nil, err
	}
	if ownRedis(opt.Addr, c.redisPort) {
		// The banner's own export line, pasted in this shell: it names
		// the embedded Redis, which runs only when no URL is given. Taken
		// as another Redis, nothing listened there, events waited for
		// Redis for good, and the snapshot in the data directory was not
		// restored.
		c.redis.URL = ""
		return nil, nil
	}
	return opt, nil
}

// ownRedis reports whether addr is the embedded Redis's own address on
// this machine: a loopback host and the -redis-port.
func ownRedis(addr string, port int) bool {
	host, p, err := net.SplitHostPort(addr)
	if err != nil || p != strconv.Itoa(port) {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminMux is the admin listener's handler: /metrics, the admin API, and
// probes (ingest's handler) for /healthz and /readyz.
func adminMux(probes http.Handler, tel *telemetry.Telemetry, api *admin.API) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.Handler())
	api.Register(mux)
	mux.Handle("GET /healthz", probes)
	mux.Handle("GET /readyz", probes)
	return admin.RefuseUncleaned(service.AdminRoutes(mux))
}

// sampleCurl is a ready-to-paste curl for a Shopify order webhook: Shopify
// signs without a timestamp, so the command stays valid however long it
// waits in a terminal. Its webhook id (the shop source's key) and the
// order's updated_at (its business time) are the start's time, so the
// sample of each start is a new, newer update (processed), not a
// duplicate of the last start's, kept in .inlet/.
func sampleCurl(sources *source.File, base string, now time.Time) string {
	src, ok := sources.Get("shop")
	if !ok {
		return "(no source named shop in the sources file)"
	}
	// A valid orders/updated body for API 2025-01 (contract shopify/order v2).
	body := []byte(`{"id":820982911946154508,"name":"#1001","email":"jon@example.com","created_at":"2025-01-10T11:00:00-05:00","updated_at":"` +
		now.UTC().Format(time.RFC3339) + `","currency":"USD","total_price":"199.65","financial_status":"paid","line_items":[{"id":1,"title":"Wool hat","quantity":1,"price":"199.65"}]}`)
	// One line, and no ' that would end the shell quote.
	body = []byte(strings.ReplaceAll(strings.Join(strings.Fields(string(body)), " "), "'", "\\u0027"))
	h := http.Header{}
	if err := src.Provider().Sign(h, body, now); err != nil {
		return "(cannot sign sample: " + err.Error() + ")"
	}
	webhookID := "dev-" + strconv.FormatInt(now.Unix(), 36)
	return fmt.Sprintf(`  curl -sS -X POST %s/webhooks/shop \
    -H 'Content-Type: application/json' \
    -H 'X-Shopify-Topic: orders/updated' \
    -H 'X-Shopify-API-Version: 2025-01' \
    -H 'X-Shopify-Webhook-Id: %s' \
    -H 'X-Shopify-Hmac-Sha256: %s' \
    --data-binary '%s'`, base, webhookID, h.Get("X-Shopify-Hmac-Sha256"), body)
}

// portsAdvice is the hint for a port of the embedded services in use;
// make run takes them only through the environment.
const portsAdvice = "stop it, or pick other ports with -kafka-port/-registry-port/-redis-port " +
	"(INLET_DEV_KAFKA_PORT, INLET_DEV_REGISTRY_PORT, INLET_DEV_REDIS_PORT) and, for a second stack, " +
	"another -data-dir (INLET_DATA_DIR): two stacks cannot share one"

// checkAddrs refuses listen addresses and ports that cannot be listened
// on, before the data directory is touched.
func (c *config) checkAddrs() error {
	errs := []error{
		service.CheckAddr("ingest-addr", "INLET_INGEST_ADDR", c.ingest.Addr),
		service.CheckAddr("admin-addr", "INLET_ADMIN_ADDR", c.adminAddr),
	}
	for _, p := range []struct {
		flag, env string
		port      int
	}{
		{"kafka-port", "INLET_DEV_KAFKA_PORT", c.kafkaPort},
		{"registry-port", "INLET_DEV_REGISTRY_PORT", c.registryPort},
		{"redis-port", "INLET_DEV_REDIS_PORT", c.redisPort},
	} {
		if p.port < 0 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("-%s (%s) %d: want a port from 1 to 65535 (0: any free one)", p.flag, p.env, p.port))
		}
	}
	return errors.Join(errs...)
}

// tryPorts binds each fixed port of the stack (Kafka, the registry, and
// the embedded Redis when no -redis-url is given) on 127.0.0.1 and lets
// it go, so a port in use stops the start before the data directory is
// touched. Another process may still take one before the stack does: the
// stack's own start then fails with the same hint.
func (c *config) tryPorts() error {
	ports := []struct {
		flag string
		port int
		used bool
	}{{"kafka-port", c.kafkaPort, true}, {"registry-port", c.registryPort, true}, {"redis-port", c.redisPort, c.redis.URL == ""}}
	for _, p := range ports {
		if !p.used || p.port == 0 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)))
		if err != nil {
			return portHint(fmt.Errorf("-%s %d: %w", p.flag, p.port, err), portsAdvice)
		}
		ln.Close()
	}
	return nil
}
