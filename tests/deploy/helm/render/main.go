// Command render prints a Helm chart's manifests as `helm template` would, for Treadle's
// chart tests, where no helm binary can be installed.
//
// It is a test tool, not part of the product. It renders with Go's own text/template and
// sprig (Debian's packages, built in GOPATH mode) and adds what Helm adds: its functions
// (include, tpl, required, toYaml, fromYaml, toJson, fromJson, lookup; see engine.go),
// the objects .Values, .Release, .Chart, .Files, .Capabilities and .Template, the values
// merge (the chart's values.yaml, then each -f file, then each --set), the chart's
// kubeVersion check, missingkey=zero, partials (templates/_*) not rendered and NOTES.txt
// not printed. Its messages are Helm's: "Error: execution error at (file:line:col): msg"
// for `required`.
//
// Usage:
//
//	render CHART_DIR [-f VALUES.yaml]... [--set path=value]... [--name RELEASE]
//	       [--namespace NS] [--upgrade] [--kube-version 1.29.0] [--api-versions G/V]...
//	       [--values-out FILE]
//
// --values-out writes the merged values as JSON (the test validates them against
// values.schema.json, as Helm does before rendering).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	yaml "gopkg.in/yaml.v2"
)

type options struct {
	chartDir    string
	valueFiles  []string
	sets        []string
	release     string
	namespace   string
	upgrade     bool
	kubeVersion string
	apiVersions []string
	valuesOut   string
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err == nil {
		err = run(opts)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(1)
	}
}

func parseArgs(args []string) (options, error) {
	opts := options{release: "release-name", namespace: "default", kubeVersion: "1.29.0"}
	takesValue := map[string]*string{
		"--name": &opts.release, "--namespace": &opts.namespace,
		"--kube-version": &opts.kubeVersion, "--values-out": &opts.valuesOut,
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag needs an argument: %s", arg)
			}
			i++
			return args[i], nil
		}
		switch {
		case arg == "-f" || arg == "--values":
			v, err := next()
			if err != nil {
				return opts, err
			}
			opts.valueFiles = append(opts.valueFiles, v)
		case arg == "--set":
			v, err := next()
			if err != nil {
				return opts, err
			}
			opts.sets = append(opts.sets, v)
		case arg == "--api-versions":
			v, err := next()
			if err != nil {
				return opts, err
			}
			opts.apiVersions = append(opts.apiVersions, v)
		case arg == "--upgrade":
			opts.upgrade = true
		case takesValue[arg] != nil:
			v, err := next()
			if err != nil {
				return opts, err
			}
			*takesValue[arg] = v
		case strings.HasPrefix(arg, "-"):
			return opts, fmt.Errorf("unknown flag: %s", arg)
		case opts.chartDir == "":
			opts.chartDir = arg
		default:
			return opts, fmt.Errorf("unexpected argument: %s", arg)
		}
	}
	if opts.chartDir == "" {
		return opts, fmt.Errorf("a chart directory is required")
	}
	return opts, nil
}

func run(opts options) error {
	chart, err := loadChart(opts.chartDir)
	if err != nil {
		return err
	}
	caps, err := newCapabilities(opts.kubeVersion, opts.apiVersions)
	if err != nil {
		return err
	}
	if err := checkKubeVersion(chart.Metadata, caps); err != nil {
		return err
	}
	values, err := mergedValues(chart.Values, opts.valueFiles, opts.sets)
	if err != nil {
		return err
	}
	if opts.valuesOut != "" {
		data, err := json.MarshalIndent(values, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(opts.valuesOut, data, 0o644); err != nil {
			return err
		}
	}
	top := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name": opts.release, "Namespace": opts.namespace, "Service": "Helm",
			"IsInstall": !opts.upgrade, "IsUpgrade": opts.upgrade, "Revision": revision(opts.upgrade),
		},
		"Chart":        chart.Metadata,
		"Files":        chart.Files,
		"Capabilities": caps,
	}
	rendered, err := renderTemplates(chart, top)
	if err != nil {
		return err
	}
	return printManifests(rendered)
}

func revision(upgrade bool) int {
	if upgrade {
		return 2
	}
	return 1
}

var separator = regexp.MustCompile(`(?:^|\s*\n)---\s*`)

// printManifests prints every document of every rendered file but NOTES.txt, each under
// its "# Source:" line; a document that is not YAML fails as Helm fails.
func printManifests(rendered map[string]string) error {
	names := make([]string, 0, len(rendered))
	for name := range rendered {
		if !strings.HasSuffix(name, "/NOTES.txt") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out strings.Builder
	for _, name := range names {
		for _, doc := range separator.Split(rendered[name], -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head map[string]interface{}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				return fmt.Errorf("YAML parse error on %s: error converting YAML to JSON: %s", name, err)
			}
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(doc))
		}
	}
	_, err := os.Stdout.WriteString(out.String())
	return err
}
