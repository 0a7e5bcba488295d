package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/handlers"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/schemacheck"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/schemas/contracts"
)

// exitProblems is schemas check's exit code when the build does not fit:
// a schema the registry would refuse, a fixture its contract refuses, a
// sources file naming a contract the build lacks.
const exitProblems = 4

// buildRouter builds the processor's router for a sources file, as the
// processor, services/dev and replay do (handlers.Router), with the
// contracts the check already loaded (a variable for tests, which cannot
// add Go handlers to pkg/handlers').
var buildRouter = handlers.RouterWith

// goSchemas are the processed schemas of pkg/handlers' Go handlers (a
// variable for tests, as buildRouter).
var goSchemas = handlers.Schemas

const schemasUsage = `Usage: inletctl [connection flags] schemas check [--sources FILE] [--output table|json]

Checks, before a deploy, that this build of Inlet fits what it will run
against, and registers nothing (read-only registry credentials do):

  - the sources file (--sources, INLET_SOURCES): every event names a
    contract this build has, its handlers build, and each source's retry
    settings fit the processor's tiers (--retry-tiers, INLET_RETRY_TIERS);
  - the build's contracts: every fixture reads with its version;
  - the schema registry: for the envelope (subject <raw topic>-value) and
    the processed schema of each contract the sources use (every contract
    without --sources) and of each Go handler of this build, whether the
    exact schema is registered, the subject is new, or a new version
    would pass the subject's compatibility level:
    an incompatible one makes ingest answer 503 or the processor wait from
    the first event that needs it.

Run it with the new version's inletctl against the production registry
before rolling the services out.

Exit code 0: fits; 4: a problem found (the sources file refused
included); 1: the check could not run (the registry unreachable or
refusing the credentials); 2: usage (an unreadable sources file
included).

Examples:
  inletctl schemas check --sources /etc/inlet/sources.yaml
  inletctl -topic-prefix inlet -schema-registry-url https://sr.example.com schemas check --output json
`

// schemasReport is schemas check's result, as --output json prints it.
type schemasReport struct {
	Contracts int                  `json:"contracts"`
	Fixtures  int                  `json:"fixtures_read"`
	Sources   string               `json:"sources,omitempty"`
	Subjects  []schemacheck.Result `json:"subjects"`
	Problems  []string             `json:"problems"`
	Warnings  []string             `json:"warnings"`
}

func schemasCmd(args []string, kcfg *kafka.Config, rcfg *service.RegistryConfig, out io.Writer) (int, error) {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(os.Stderr, schemasUsage)
		if len(args) == 0 {
			return exitUsage, errors.New("schemas: say check")
		}
		return exitUsage, fmt.Errorf("schemas: unknown command %q (want check)", args[0])
	}
	fs := flagenv.New("schemas check")
	fs.Usage = func() { fmt.Fprint(os.Stderr, schemasUsage); fs.PrintDefaults() }
	var sourcesPath, output string
	fs.String(&sourcesPath, "sources", "INLET_SOURCES", "", "sources file (the services'); empty: check every contract of this build")
	fs.StringVar(&output, "output", "table", "table or json")
	tiers := kafka.RetryTiersFlag(fs, "retry tier delays (the processor's): the sources' retry settings are checked against them")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitUsage, fmt.Errorf("schemas check takes no arguments (got %q)", fs.Args())
	}
	if output != "table" && output != "json" {
		return exitUsage, fmt.Errorf("--output %q: table or json", output)
	}
	delays, err := tiers()
	if err != nil {
		return exitUsage, err
	}
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		return exitError, fmt.Errorf("this build's contracts: %w", err)
	}
	rep := schemasReport{Contracts: len(reg.Contracts()), Sources: sourcesPath, Problems: []string{}, Warnings: []string{}}
	var fixtureProblems []string
	rep.Fixtures, fixtureProblems = schemacheck.Fixtures(contracts.FS, reg)
	rep.Problems = append(rep.Problems, fixtureProblems...)

	checked := reg.Contracts()
	if sourcesPath != "" {
		sources, err := source.Load(sourcesPath, source.WithoutSecrets())
		var pe *os.PathError
		switch {
		case errors.As(err, &pe):
			// Unreadable: a usage error, as dlq ls's; exit 1 says the
			// registry did not answer, and a gate retrying it on 1
			// retried a typo for good.
			return exitUsage, fmt.Errorf("--sources (INLET_SOURCES): %w", err)
		case err != nil:
			// Read, and refused as the processor would refuse it: the
			// deploy does not fit.
			return exitProblems, fmt.Errorf("--sources (INLET_SOURCES): %w", err)
		}
		// As the processor's start refuses them: a retry tier with no
		// topic of its own, more attempts than the tiers allow.
		if _, err := processor.RetryPolicies(sources, delays); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				rep.Problems = append(rep.Problems, "sources: "+line)
			}
		}
		var missing []string
		checked, missing = schemacheck.Used(sources, reg)
		for _, m := range missing {
			rep.Problems = append(rep.Problems, fmt.Sprintf("sources: contract %q is not in this build (schemas/contracts/%s)", m, m))
		}
		if len(missing) == 0 {
			// The router as the processor builds it: templates and sinks,
			// and the Go handlers of pkg/handlers, whose constructors and
			// routes (against the file's entries too) refuse a start.
			if _, err := buildRouter(sources, reg); err != nil {
				rep.Problems = append(rep.Problems, "sources: "+err.Error())
			}
		}
	}

	topics := kafka.TopicNames(kcfg.TopicPrefix, nil)
	subjects, err := schemacheck.Subjects(topics, checked)
	if err != nil {
		return exitError, err
	}
	// The Go handlers' own processed schemas: the processor builds (and
	// registers for) every one, whatever the sources file.
	var hs []schemacheck.HandlerSchema
	for _, s := range goSchemas() {
		hs = append(hs, schemacheck.HandlerSchema{Route: s.Route.String(), Text: s.Text, Subject: s.Subject})
	}
	goSubjects, goProblems := schemacheck.HandlerSubjects(topics, hs)
	subjects = append(subjects, goSubjects...)
	rep.Problems = append(rep.Problems, goProblems...)
	rc, err := rcfg.Client()
	if err != nil {
		return exitError, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep.Subjects = schemacheck.Check(ctx, rc.SR(), subjects)
	unknown := 0
	for _, r := range rep.Subjects {
		switch r.Status {
		case schemacheck.Incompatible:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: the registry refuses %s: %s", r.Name, r.Schema, strings.Join(r.Messages, "; ")))
		case schemacheck.Unknown:
			unknown++
		}
		if r.Warning != "" {
			rep.Warnings = append(rep.Warnings, r.Name+": "+r.Warning)
		}
	}

	if output == "json" {
		if err := writeJSON(out, rep); err != nil {
			return exitError, err
		}
	} else {
		printSchemas(out, rep)
	}
	switch {
	case unknown > 0:
		return exitError, fmt.Errorf("the registry did not answer for %d of %d subjects (see above): is it up at %s (-schema-registry-url, INLET_SCHEMA_REGISTRY_URL)?", unknown, len(rep.Subjects), service.ShownURLs(rcfg.URLs))
	case len(rep.Problems) > 0:
		return exitProblems, nil
	}
	return exitOK, nil
}

func printSchemas(out io.Writer, rep schemasReport) {
	scope := "every contract of this build (no --sources)"
	if rep.Sources != "" {
		scope = "the contracts " + rep.Sources + " uses"
	}
	fmt.Fprintf(out, "contracts: %d in this build, %d fixtures read; checking %s\n\n", rep.Contracts, rep.Fixtures, scope)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tSCHEMA\tSTATUS\tDETAIL")
	for _, r := range rep.Subjects {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Schema, r.Status, schemaDetail(r))
	}
	tw.Flush()
	for _, w := range rep.Warnings {
		fmt.Fprintln(out, "\nwarning:", w)
	}
	if len(rep.Problems) == 0 {
		return
	}
	fmt.Fprintln(out, "\nproblems:")
	for _, p := range rep.Problems {
		fmt.Fprintln(out, "  -", p)
	}
}

func schemaDetail(r schemacheck.Result) string {
	var d string
	switch r.Status {
	case schemacheck.Registered:
		d = fmt.Sprintf("id %d, version %d", r.ID, r.Version)
	case schemacheck.New:
		d = "the first write registers version 1"
	case schemacheck.Compatible:
		d = fmt.Sprintf("the first write registers version %d", r.Latest+1)
	case schemacheck.Incompatible:
		d = fmt.Sprintf("refused against version %d", r.Latest)
	case schemacheck.Unknown:
		d = strings.Join(r.Messages, "; ")
	}
	if r.Level != "" {
		d += ", level " + r.Level
	}
	return d
}
