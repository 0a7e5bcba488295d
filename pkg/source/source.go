// Package source loads the sources file: which senders Inlet accepts, how
// each one signs, where its event type, id, schema version and business time
// live, and how its events are processed. Secrets are named here but read
// only from the environment or files.
package source

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/webhook"
)

// Kinds of source, named after how they sign: pkg/webhook's kinds, which
// its New builds and its Kinds lists. Each also needs its case in
// applyKindDefaults (kinds.go): Parse refuses a kind webhook knows and this
// package has no defaults for.
const (
	KindStripe           = webhook.KindStripe
	KindGitHub           = webhook.KindGitHub
	KindShopify          = webhook.KindShopify
	KindStandardWebhooks = webhook.KindStandardWebhooks
	KindHMAC             = webhook.KindHMAC
	KindNone             = webhook.KindNone
)

// Defaults for settings a source leaves out.
const (
	DefaultMaxBody       = 1 << 20
	DefaultTolerance     = 5 * time.Minute
	DefaultDedupWindow   = 7 * 24 * time.Hour
	DefaultMaxFuture     = time.Hour
	DefaultSchemaVersion = "v1"
	DefaultBatchMaxLines = 10000
	DefaultBatchMaxBody  = 16 << 20
	// MaxBatchLines bounds batch.max_lines: the answer holds a result per
	// line, and ingest keeps an acknowledgement slot per event produced.
	MaxBatchLines = 100000
	// MinBatchTokenLen is the shortest batch bearer token accepted, in
	// bytes, as for the admin API's tokens: ingest faces the internet and
	// does not slow down a guesser.
	MinBatchTokenLen = 16
	// MinSecretLen is the signing key length, in bytes, below which a
	// source's secret is reported by ShortSecrets (ingest warns at start):
	// a short HMAC key can be guessed offline from one signed delivery.
	// Not refused: GitHub's and an hmac source's secrets are chosen by
	// the user, and existing setups would stop.
	MinSecretLen = 16
	// MaxBatchBody bounds batch.max_body: a signed batch is read whole
	// into memory before it is verified.
	MaxBatchBody = 256 << 20
)

// ErrNoSources is returned (wrapped) by Parse and Load for a file that
// defines no source: empty, only comments, or an empty sources mapping.
var ErrNoSources = errors.New("no sources defined")

// File is the sources file.
type File struct {
	Sources map[string]*Source `yaml:"sources"`
}

// Source is one configured sender.
type Source struct {
	Name string `yaml:"-"`
	Kind string `yaml:"kind"`
	// SecretsEnv names environment variables holding the signing secrets, in
	// order; several allow rotation. VAR_FILE is read when VAR is unset.
	// Unset variables are skipped (a "previous" secret may be absent), but at
	// least one must be set unless the kind is none.
	SecretsEnv []string `yaml:"secrets_env"`
	// Tolerance bounds the age (and future skew) of signed timestamps.
	Tolerance Duration `yaml:"tolerance"`
	// MaxBody is the largest body accepted, enforced while reading.
	MaxBody ByteSize `yaml:"max_body"`
	// JSON says bodies must be JSON (400 otherwise). Default true.
	JSON *bool `yaml:"json"`
	// HMAC configures kind hmac.
	HMAC HMACSpec `yaml:"hmac"`

	EventType     Field `yaml:"event_type"`
	EventID       Field `yaml:"event_id"`
	SchemaVersion Field `yaml:"schema_version"`
	OccurredAt    Field `yaml:"occurred_at"`
	// KeepHeaders are request headers copied into the envelope, beside the
	// kind's own (signature headers are never kept).
	KeepHeaders []string `yaml:"keep_headers"`

	Batch       BatchSpec `yaml:"batch"`
	Retry       RetrySpec `yaml:"retry"`
	DedupWindow Duration  `yaml:"dedup_window"`
	// MaxFuture bounds how far after its receipt an event's business time
	// may be: newest-wins keeps an entity's latest time, so one event dated
	// in the future (a sender's bug or broken clock) would make every real
	// update of that entity stale until that date. Later ones are invalid.
	MaxFuture Duration             `yaml:"max_future"`
	Runbook   string               `yaml:"runbook"`
	Events    map[string]EventSpec `yaml:"events"`
	// ShareEntitiesWith names sources whose entity keys this one's may
	// render on purpose (one provider's events through two sources, such
	// as webhooks and a backfill): otherwise Parse refuses two sources'
	// entity_key templates that could meet (see checkEntityKeys).
	ShareEntitiesWith []string `yaml:"share_entities_with"`

	provider     webhook.Provider
	batchTokens  [][]byte
	hasSecrets   bool
	shortSecrets []ShortSecret
	keepHeaders  []string // canonical names
	signatureHdr map[string]bool
}

// HMACSpec configures the generic hmac kind.
type HMACSpec struct {
	Header    string `yaml:"header"`
	Algorithm string `yaml:"algorithm"` // sha256 | sha512
	Encoding  string `yaml:"encoding"`  // hex | base64
	Prefix    string `yaml:"prefix"`    // e.g. "sha256="
}

// Field says where a value is found: a request header, a JSON pointer into
// the body, then fallback pointers (joined with ":"), then Default. For
// event_id, HashBody (default true) falls back to the body's SHA-256.
type Field struct {
	Header   string   `yaml:"header"`
	Pointer  string   `yaml:"pointer"`
	Fallback []string `yaml:"fallback"`
	Default  string   `yaml:"default"`
	HashBody *bool    `yaml:"hash_body"`

	// Pointer and Fallback compiled once at load.
	path      CompiledPointer
	fallbacks []CompiledPointer
	// pointerFirst reads Pointer before Header (a kind's default that
	// prefers the signed body and falls back to a header).
	pointerFirst bool
	// headerAlt is read where Header is absent: a kind's default whose
	// provider names its headers two ways (Shopify-Topic beside
	// X-Shopify-Topic).
	headerAlt string
}

func (f *Field) compile() {
	f.path = CompilePointer(f.Pointer)
	f.fallbacks = f.fallbacks[:0]
	for _, p := range f.Fallback {
		f.fallbacks = append(f.fallbacks, CompilePointer(p))
	}
}

// BatchSpec configures the NDJSON events endpoint for this source. It is off
// unless TokensEnv is set or Signed is true.
type BatchSpec struct {
	// TokensEnv names variables holding bearer tokens (several for rotation).
	TokensEnv []string `yaml:"tokens_env"`
	// Signed accepts a batch signed over the whole body with the source's own
	// signature scheme. A signed batch is verified before anything is
	// written, so it is read whole (up to MaxBody) first.
	Signed   bool     `yaml:"signed"`
	MaxLines Count    `yaml:"max_lines"`
	MaxBody  ByteSize `yaml:"max_body"`
}

// RetrySpec is a source's retry budget. Left out, Tiers are all of the
// processor's (-retry-tiers) and MaxAttempts is one per tier plus the
// first: the processor fills them in, knowing its tiers.
type RetrySpec struct {
	Tiers       []Duration `yaml:"tiers"`
	MaxAttempts Count      `yaml:"max_attempts"`
}

// EventSpec says how the processor handles an event type (exact or a glob
// with *): its payload contract and key templates.
type EventSpec struct {
	Contract   string    `yaml:"contract"`
	EntityKey  string    `yaml:"entity_key"`
	NaturalKey string    `yaml:"natural_key"`
	OccurredAt string    `yaml:"occurred_at"`
	Sink       *SinkSpec `yaml:"sink"`
}

// SinkSpec delivers each processed event to an HTTP endpoint besides the
// processed topic. Header values come from environment variables (they are
// often credentials).
type SinkSpec struct {
	URL             string            `yaml:"url"`
	Method          string            `yaml:"method"`
	HeadersEnv      map[string]string `yaml:"headers_env"`
	Timeout         Duration          `yaml:"timeout"`
	RetryableStatus []int             `yaml:"retryable_status"`
}

// Headers resolves the sink's header values from the environment.
func (s *SinkSpec) Headers() (map[string]string, error) {
	out := make(map[string]string, len(s.HeadersEnv))
	for h, env := range s.HeadersEnv {
		v, err := flagenv.Secret(env)
		if err != nil {
			return nil, err
		}
		if v == "" {
			return nil, fmt.Errorf("sink header %s: environment variable %s is not set", h, env)
		}
		out[h] = v
	}
	return out, nil
}

// LoadOpt changes how a sources file is loaded.
type LoadOpt func(*loadCfg)

type loadCfg struct{ noSecrets bool }

// WithoutSecrets loads the file without reading any secret: for processes
// that never verify signatures (the processor, ops tools), so they need not
// be given the senders' secrets. Provider() is nil then.
func WithoutSecrets() LoadOpt { return func(c *loadCfg) { c.noSecrets = true } }

// Load reads and validates the sources file at path, resolving secrets from
// the environment.
func Load(path string, opts ...LoadOpt) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse parses and validates a sources file, resolving secrets from the
// environment.
func Parse(b []byte, opts ...LoadOpt) (*File, error) {
	var lc loadCfg
	for _, o := range opts {
		o(&lc)
	}
	if err := checkNesting(b); err != nil {
		return nil, err
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField())
	if err := dec.Decode(&f); err != nil {
		// The decoder's word for a file without a document.
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty or holds only comments", ErrNoSources)
		}
		// A duration or size that did not parse knows its line, not
		// its source.
		var ve *ValueError
		if errors.As(err, &ve) {
			if doc, perr := parser.ParseBytes(b, 0); perr == nil && len(doc.Docs) > 0 {
				ve.locate(doc.Docs[0])
			}
		}
		return nil, err
	}
	if err := checkOneDocument(dec, b); err != nil {
		return nil, err
	}
	if len(f.Sources) == 0 {
		return nil, ErrNoSources
	}
	var errs []error
	for _, name := range f.Names() {
		s := f.Sources[name]
		if s == nil {
			errs = append(errs, fmt.Errorf("source %q: empty", name))
			continue
		}
		s.Name = name
		if err := s.init(lc); err != nil {
			errs = append(errs, prefixed(fmt.Sprintf("source %q", name), err)...)
		}
	}
	errs = append(errs, checkEntityKeys(&f)...)
	errs = append(errs, checkNaturalKeys(&f)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &f, nil
}

// ErrSeveralDocuments is returned (wrapped, naming the line) by Parse and
// Load for a file holding a second YAML document after "---": the decoder
// read the first and dropped the rest without a word, sources and mistakes
// alike. An empty document after a trailing "---" is no second document.
var ErrSeveralDocuments = errors.New("the file holds more than one YAML document; put every source under the one sources mapping")

// checkOneDocument refuses a file whose decoder, having read the first
// document, finds another one: only io.EOF says there is none.
func checkOneDocument(dec *yaml.Decoder, b []byte) error {
	var rest any
	err := dec.Decode(&rest)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("%w: the second does not parse: %w", ErrSeveralDocuments, err)
	}
	if doc, perr := parser.ParseBytes(b, 0); perr == nil && len(doc.Docs) > 1 && doc.Docs[1].Start != nil {
		return fmt.Errorf("%w (the second starts at line %d)", ErrSeveralDocuments, doc.Docs[1].Start.Position.Line)
	}
	return ErrSeveralDocuments
}

// prefixed is err with prefix before it, or, when err joins several
// errors (errors.Join, one a line), each of them with prefix before it: a
// prefix before the joined error named only the first line, and the
// others (a source's batch tokens, an event's key template) read as if
// they were about no source.
func prefixed(prefix string, err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts := j.Unwrap()
		texts := make([]string, len(parts))
		for i, e := range parts {
			texts[i] = e.Error()
		}
		// Only errors.Join's layout: fmt.Errorf with several %w has
		// text of its own between them.
		if len(parts) > 0 && err.Error() == strings.Join(texts, "\n") {
			var out []error
			for _, e := range parts {
				out = append(out, prefixed(prefix, e)...)
			}
			return out
		}
	}
	return []error{fmt.Errorf("%s: %w", prefix, err)}
}

// TypesLimiter returns a telemetry.Limiter of max event types per source
// that keeps, besides those, every event type the sources' events name
// exactly (not a glob: anyone who may post to a source can invent types a
// glob matches): those are counted under their own names however many
// types a sender invents.
func (f *File) TypesLimiter(max int) *telemetry.Limiter {
	l := telemetry.NewLimiter(max)
	for _, name := range f.Names() {
		src, _ := f.Get(name)
		for pattern := range src.Events {
			if !strings.Contains(pattern, "*") {
				l.Reserve(name, pattern)
			}
		}
	}
	return l
}

// Names returns the source names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Sources))
	for n := range f.Sources {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Get returns the named source.
func (f *File) Get(name string) (*Source, bool) {
	s, ok := f.Sources[name]
	return s, ok
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func (s *Source) init(lc loadCfg) error {
	var errs []error
	if !validName.MatchString(s.Name) {
		errs = append(errs, errors.New("name must be lower-case letters, digits, - or _ (at most 64)"))
	}
	// Checked here too, not only when the provider is built from the
	// secrets: the processor and inletctl load the file without them, and
	// their --check-config passed a file ingest then refused.
	knownKind := slices.Contains(webhook.Kinds(), s.Kind)
	if !knownKind {
		errs = append(errs, fmt.Errorf("kind %q: want one of %s", s.Kind, strings.Join(webhook.Kinds(), ", ")))
	}
	hmacErrs := s.checkHMAC()
	errs = append(errs, hmacErrs...)
	// Whether secrets are named is the file's shape, not the
	// environment's: checked here, not only when the secrets are read,
	// for the same reason as the kind.
	secretsOK := true
	switch {
	case s.Kind == KindNone && len(s.SecretsEnv) > 0:
		secretsOK = false
		errs = append(errs, errors.New("kind none takes no secrets: drop secrets_env or use a signing kind"))
	case knownKind && s.Kind != KindNone && len(s.SecretsEnv) == 0:
		secretsOK = false
		errs = append(errs, errors.New("secrets_env: name at least one environment variable holding the signing secret"))
	}
	// An empty name reads no variable, or VAR_FILE's "_FILE", and was
	// reported as "none of the secret variables [] is set", or not at all
	// beside another name.
	for _, l := range []struct {
		field string
		names []string
	}{{"secrets_env", s.SecretsEnv}, {"batch.tokens_env", s.Batch.TokensEnv}} {
		for i, env := range l.names {
			if strings.TrimSpace(env) == "" {
				errs = append(errs, fmt.Errorf("%s[%d]: empty environment variable name", l.field, i))
			}
		}
	}
	// An unknown kind is refused above already; a kind pkg/webhook knows
	// but applyKindDefaults lacks is a build missing its defaults.
	if err := s.applyKindDefaults(); err != nil && knownKind {
		errs = append(errs, err)
	}
	for _, f := range []*Field{&s.EventType, &s.EventID, &s.SchemaVersion, &s.OccurredAt} {
		f.compile()
	}
	if s.MaxBody == 0 {
		s.MaxBody = DefaultMaxBody
	}
	if s.MaxBody < 0 || s.MaxBody > kafka.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("max_body must be between 1 and %d bytes", kafka.MaxBodyBytes))
	}
	if s.Tolerance == 0 {
		s.Tolerance = Duration(DefaultTolerance)
	}
	if s.DedupWindow == 0 {
		s.DedupWindow = Duration(DefaultDedupWindow)
	}
	// Redis keeps expiries in milliseconds: the store refuses a shorter
	// window at each confirm, which held the batch's entity locks for the
	// whole claim lease and let the event through again.
	if s.DedupWindow < Duration(time.Millisecond) {
		errs = append(errs, fmt.Errorf("dedup_window %v: must be at least 1ms (7 days by default)", time.Duration(s.DedupWindow)))
	}
	if s.MaxFuture == 0 {
		s.MaxFuture = Duration(DefaultMaxFuture)
	}
	if s.MaxFuture < 0 {
		errs = append(errs, errors.New("max_future must be positive"))
	}
	// Without tiers of its own the source takes the processor's, and the
	// processor checks the budget against those.
	switch {
	case s.Retry.MaxAttempts < 0:
		errs = append(errs, errors.New("retry.max_attempts must be positive"))
	case len(s.Retry.Tiers) > 0 && int(s.Retry.MaxAttempts) > len(s.Retry.Tiers)+1:
		errs = append(errs, fmt.Errorf("retry.max_attempts must be between 1 and %d (one first try plus one per tier)", len(s.Retry.Tiers)+1))
	}
	if s.Batch.MaxLines == 0 {
		s.Batch.MaxLines = DefaultBatchMaxLines
	}
	if s.Batch.MaxBody == 0 {
		s.Batch.MaxBody = DefaultBatchMaxBody
	}
	if s.Batch.MaxLines < 0 || s.Batch.MaxLines > MaxBatchLines {
		errs = append(errs, fmt.Errorf("batch.max_lines must be positive and at most %d", MaxBatchLines))
	}
	if s.Batch.MaxBody < 0 || s.Batch.MaxBody > MaxBatchBody {
		errs = append(errs, fmt.Errorf("batch.max_body must be between 1 and %d bytes (a signed batch is read whole before it is verified)", MaxBatchBody))
	}
	if s.Batch.Signed && s.Kind == KindNone {
		errs = append(errs, errors.New("batch.signed: kind none has no signature to verify a batch with; use batch.tokens_env"))
	}

	if !lc.noSecrets {
		// Without a kind webhook knows, with hmac settings or secret
		// names refused above, building the provider only says so a
		// second time.
		errs = append(errs, s.loadSecrets(knownKind && len(hmacErrs) == 0 && secretsOK)...)
	}

	// One id for every event without its own: each would overwrite the
	// one before on the compacted raw topic and read as its duplicate.
	if s.EventID.Default != "" {
		errs = append(errs, errors.New("event_id.default: a fixed id would make every event without one the same event (one kept on the raw topic, the rest duplicates); use fallback pointers, or leave hash_body on"))
	}
	for _, f := range []struct {
		name string
		f    Field
	}{{"event_type", s.EventType}, {"event_id", s.EventID}, {"schema_version", s.SchemaVersion}, {"occurred_at", s.OccurredAt}} {
		if p := f.f.Pointer; p != "" {
			if err := checkPointer(p); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
			}
		}
		for i, p := range f.f.Fallback {
			if p != "" {
				if err := checkPointer(p); err != nil {
					errs = append(errs, fmt.Errorf("%s.fallback[%d]: %w", f.name, i, err))
				}
			}
		}
	}
	// In order: the same file must be refused with the same text every
	// time (--check-config output is diffed and pasted into tickets).
	for _, pattern := range slices.Sorted(maps.Keys(s.Events)) {
		ev := s.Events[pattern]
		if pattern == "" {
			errs = append(errs, errors.New("events: empty event type pattern"))
		}
		if err := ev.validate(); err != nil {
			errs = append(errs, prefixed(fmt.Sprintf("events[%q]", pattern), err)...)
		}
	}

	s.signatureHdr = map[string]bool{}
	for _, h := range signatureHeaders(s) {
		s.signatureHdr[canonical(h)] = true
	}
	for _, h := range append(kindHeaders(s.Kind), s.KeepHeaders...) {
		if c := canonical(h); !s.signatureHdr[c] && !slices.Contains(s.keepHeaders, c) {
			s.keepHeaders = append(s.keepHeaders, c)
		}
	}
	return errors.Join(errs...)
}

// checkHMAC refuses the hmac settings webhook.NewHMAC would refuse, so
// that a file loaded without secrets (the processor's and inletctl's
// --check-config) is refused as ingest refuses it. The values and
// defaults are that function's.
func (s *Source) checkHMAC() []error {
	if s.Kind != KindHMAC {
		// Read by kind hmac alone: on a github source, hmac: {algorithm:
		// sha1, header: X-Hub-Signature} was accepted and the source
		// verified as the kind does, not as the operator meant.
		if s.HMAC != (HMACSpec{}) {
			return []error{fmt.Errorf("hmac: settings read by kind hmac only; kind %s verifies its provider's own signature (drop the hmac block, or use kind hmac)", s.Kind)}
		}
		return nil
	}
	var errs []error
	switch {
	case s.HMAC.Header == "":
		errs = append(errs, errors.New("kind hmac: hmac.header must name the signature header"))
	case !webhook.ValidHeaderName(s.HMAC.Header):
		errs = append(errs, fmt.Errorf("hmac.header %q: not a valid HTTP header name (letters, digits and !#$%%&'*+-.^_`|~)", s.HMAC.Header))
	}
	size := sha256.Size
	switch a := strings.ToLower(s.HMAC.Algorithm); a {
	case "", "sha256":
	case "sha512":
		size = sha512.Size
	default:
		errs = append(errs, fmt.Errorf("hmac.algorithm %q: want sha256 or sha512 (sha256 when left out)", s.HMAC.Algorithm))
	}
	encoded := hex.EncodedLen(size)
	switch e := strings.ToLower(s.HMAC.Encoding); e {
	case "", "hex":
	case "base64":
		encoded = base64.StdEncoding.EncodedLen(size)
	default:
		errs = append(errs, fmt.Errorf("hmac.encoding %q: want hex or base64 (hex when left out)", s.HMAC.Encoding))
	}
	if len(s.HMAC.Prefix)+encoded > webhook.MaxHeaderBytes {
		errs = append(errs, fmt.Errorf("hmac.prefix: %d bytes, too long for a signature header of at most %d bytes with its %d-byte MAC", len(s.HMAC.Prefix), webhook.MaxHeaderBytes, encoded))
	}
	return errs
}

// loadSecrets reads the signing secrets and batch tokens from the
// environment and, when build is true, builds the provider. Whether the
// file names secrets at all is init's to check.
func (s *Source) loadSecrets(build bool) []error {
	var errs []error
	read := func(field string, i int, env string) []byte {
		v, err := flagenv.Secret(env)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		case flagenv.Placeholder(v):
			// Not taken: the value is public, and anyone could sign
			// (or authenticate) events with it. Not quoted either.
			set := "the signing secret the provider gave you"
			if field != "secrets_env" {
				set = "a token of your own (make one with: openssl rand -hex 32)"
			}
			errs = append(errs, fmt.Errorf("%s[%d] (%s) holds the placeholder of the Kubernetes Secret example (deploy/k8s/secret-example.yaml), not a secret: set it to %s", field, i, env, set))
		case v != "":
			return []byte(v)
		}
		return nil
	}
	var secrets [][]byte
	var from []int // each secret's place in SecretsEnv
	for i, env := range s.SecretsEnv {
		if v := read("secrets_env", i, env); v != nil {
			secrets, from = append(secrets, v), append(from, i)
		}
	}
	s.hasSecrets = len(secrets) > 0
	if s.Kind != KindNone && len(s.SecretsEnv) > 0 && !s.hasSecrets && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("none of the secret variables %v is set (or their _FILE)", s.SecretsEnv))
	}
	if len(errs) == 0 && build {
		p, err := webhook.New(s.Kind, secrets, webhook.Options{
			Tolerance: time.Duration(s.Tolerance),
			HMAC: webhook.HMACConfig{
				Header: s.HMAC.Header, Algorithm: s.HMAC.Algorithm, Encoding: s.HMAC.Encoding, Prefix: s.HMAC.Prefix,
			},
		})
		var bad *webhook.SecretError
		switch {
		case errors.As(err, &bad) && bad.Index < len(from):
			// Named by its variable: the provider's index counts only
			// the secrets set, and after a rotation (the new variable
			// unset) it is not the place in secrets_env.
			i := from[bad.Index]
			errs = append(errs, fmt.Errorf("secrets_env[%d] (%s): %s", i, s.SecretsEnv[i], bad.Problem))
		case err != nil:
			errs = append(errs, err)
		}
		s.provider = p
		if err == nil {
			for j, secret := range secrets {
				if n := webhook.KeyLen(s.Kind, secret); n >= 0 && n < MinSecretLen {
					s.shortSecrets = append(s.shortSecrets, ShortSecret{Env: s.SecretsEnv[from[j]], Len: n})
				}
			}
		}
	}

	tokenErrs := len(errs)
	for i, env := range s.Batch.TokensEnv {
		v := read("batch.tokens_env", i, env)
		if v != nil && len(v) < MinBatchTokenLen {
			// Not taken: a short token is guessed, and the shipped
			// Secret example's REPLACE_ME let anyone who reaches ingest
			// write events for the source. The value is not quoted.
			errs = append(errs, fmt.Errorf("batch.tokens_env[%d] (%s) is %d bytes long: a batch token must have at least %d (make one with: openssl rand -hex 32)", i, env, len(v), MinBatchTokenLen))
			continue
		}
		if v != nil {
			s.batchTokens = append(s.batchTokens, v)
		}
	}
	if len(s.Batch.TokensEnv) > 0 && len(s.batchTokens) == 0 && len(errs) == tokenErrs {
		errs = append(errs, fmt.Errorf("batch: none of the token variables %v is set", s.Batch.TokensEnv))
	}
	return errs
}

func (ev EventSpec) validate() error {
	var errs []error
	if ev.Contract == "" {
		errs = append(errs, errors.New("contract: name the payload contract (schemas/contracts/<provider>/<type>)"))
	}
	for _, k := range []struct{ name, tmpl string }{{"entity_key", ev.EntityKey}, {"natural_key", ev.NaturalKey}} {
		if k.tmpl == "" {
			continue
		}
		if _, err := ParseTemplate(k.tmpl); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k.name, err))
		}
	}
	if ev.Sink != nil {
		errs = append(errs, ev.Sink.validate()...)
	}
	if ev.OccurredAt != "" {
		if err := checkPointer(ev.OccurredAt); err != nil {
			errs = append(errs, fmt.Errorf("occurred_at: %w", err))
		}
	}
	return errors.Join(errs...)
}

// sinkMethods are the methods a sink may send an event with: each
// carries the event as its body. pkg/sink sends POST when none is set.
var sinkMethods = []string{http.MethodPost, http.MethodPut, http.MethodPatch}

func (s *SinkSpec) validate() []error {
	var errs []error
	if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("sink.url must be an http(s) URL with a host")) // not quoted: it may hold a credential
	}
	if s.Method != "" && !slices.Contains(sinkMethods, s.Method) {
		errs = append(errs, fmt.Errorf("sink.method %q: want one of %s (POST when left out)", s.Method, strings.Join(sinkMethods, ", ")))
	}
	for i, code := range s.RetryableStatus {
		if code < 100 || code > 599 {
			errs = append(errs, fmt.Errorf("sink.retryable_status[%d]: %d is not an HTTP status (100 to 599)", i, code))
		}
	}
	for _, h := range slices.Sorted(maps.Keys(s.HeadersEnv)) {
		if strings.TrimSpace(s.HeadersEnv[h]) == "" {
			errs = append(errs, fmt.Errorf("sink.headers_env[%q]: empty environment variable name", h))
		}
	}
	return errs
}

// Provider is the source's signature scheme (verifier and signer).
func (s *Source) Provider() webhook.Provider { return s.provider }

// RequiresJSON reports whether bodies must be JSON.
func (s *Source) RequiresJSON() bool { return s.JSON == nil || *s.JSON }

// ShortSecret is a signing secret whose key is shorter than MinSecretLen.
type ShortSecret struct {
	Env string // the variable (or its _FILE) it was read from
	Len int    // the key's length in bytes (for standard-webhooks, decoded)
}

// ShortSecrets are the source's signing secrets shorter than
// MinSecretLen, in secrets_env order; none when its secrets were not
// loaded.
func (s *Source) ShortSecrets() []ShortSecret { return s.shortSecrets }

// BatchEnabled reports whether the NDJSON events endpoint accepts this source.
func (s *Source) BatchEnabled() bool { return len(s.batchTokens) > 0 || s.Batch.Signed }

// BatchTokens are the bearer tokens accepted on the events endpoint.
func (s *Source) BatchTokens() [][]byte { return s.batchTokens }

// KeptHeaders are the canonical header names copied into envelopes, the
// correlation and trace headers first.
func (s *Source) KeptHeaders() []string { return s.keepHeaders }

// LogValue keeps secrets out of logs whatever the caller logs.
func (s *Source) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", s.Name),
		slog.String("kind", s.Kind),
		slog.Int("secrets", len(s.SecretsEnv)),
		slog.Int64("max_body", int64(s.MaxBody)),
		slog.Int("event_specs", len(s.Events)),
	)
}
