package main

// The chart as Helm loads it: Chart.yaml as .Chart (a struct, so an unknown field fails as
// in Helm), values.yaml, the templates, and every other file as .Files; and .Capabilities.

import (
	"encoding/base64"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver"
	yaml "gopkg.in/yaml.v2"
)

// Metadata is Chart.yaml, with the field names templates use (.Chart.Name, .Chart.AppVersion).
type Metadata struct {
	APIVersion   string                   `yaml:"apiVersion"`
	Name         string                   `yaml:"name"`
	Version      string                   `yaml:"version"`
	AppVersion   string                   `yaml:"appVersion"`
	Description  string                   `yaml:"description"`
	Type         string                   `yaml:"type"`
	KubeVersion  string                   `yaml:"kubeVersion"`
	Home         string                   `yaml:"home"`
	Icon         string                   `yaml:"icon"`
	Sources      []string                 `yaml:"sources"`
	Keywords     []string                 `yaml:"keywords"`
	Maintainers  []map[string]string      `yaml:"maintainers"`
	Annotations  map[string]string        `yaml:"annotations"`
	Dependencies []map[string]interface{} `yaml:"dependencies"`
	Deprecated   bool                     `yaml:"deprecated"`
}

// Chart is what the renderer needs of a chart directory.
type Chart struct {
	Metadata  *Metadata
	Values    map[string]interface{}
	Templates map[string]string // "<chart>/templates/x.yaml" -> source
	Files     Files
}

// reserved files are not in .Files (Helm's loader keeps them apart).
var reserved = map[string]bool{
	"Chart.yaml": true, "values.yaml": true, "values.schema.json": true,
	"Chart.lock": true, "requirements.yaml": true, "requirements.lock": true, ".helmignore": true,
}

func loadChart(dir string) (*Chart, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("Chart.yaml file is missing: %w", err)
	}
	meta := &Metadata{}
	if err := yaml.UnmarshalStrict(raw, meta); err != nil {
		return nil, fmt.Errorf("cannot load Chart.yaml: %w", err)
	}
	if meta.Name == "" || meta.Version == "" {
		return nil, fmt.Errorf("validation: chart.metadata.name and version are required")
	}
	values := map[string]interface{}{}
	if data, err := os.ReadFile(filepath.Join(dir, "values.yaml")); err == nil {
		if values, err = readValues(data); err != nil {
			return nil, fmt.Errorf("cannot load values.yaml: %w", err)
		}
	}
	chart := &Chart{Metadata: meta, Values: values, Templates: map[string]string{}, Files: Files{}}
	err = filepath.Walk(dir, func(file string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, file)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, "templates/"):
			chart.Templates[path.Join(meta.Name, rel)] = string(data)
		case strings.HasPrefix(rel, "charts/"):
			return fmt.Errorf("subcharts are not supported by this renderer: %s", rel)
		case !reserved[rel]:
			chart.Files[rel] = data
		}
		return nil
	})
	return chart, err
}

// Files is .Files: the chart's files outside templates/.
type Files map[string][]byte

// Get returns a file's content ("" when there is no such file).
func (f Files) Get(name string) string { return string(f[name]) }

// GetBytes returns a file's content as bytes.
func (f Files) GetBytes(name string) []byte { return f[name] }

// Lines returns a file's lines.
func (f Files) Lines(name string) []string {
	if f[name] == nil {
		return []string{}
	}
	return strings.Split(string(f[name]), "\n")
}

// Glob returns the files whose path matches pattern ("*" within a folder, "**" across).
func (f Files) Glob(pattern string) Files {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch {
		case strings.HasPrefix(pattern[i:], "**"):
			re.WriteString(".*")
			i++
		case pattern[i] == '*':
			re.WriteString("[^/]*")
		case pattern[i] == '?':
			re.WriteString("[^/]")
		default:
			re.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	re.WriteString("$")
	matcher := regexp.MustCompile(re.String())
	found := Files{}
	for name, data := range f {
		if matcher.MatchString(name) {
			found[name] = data
		}
	}
	return found
}

// AsConfig is the files as a ConfigMap's data: base name -> content, as YAML.
func (f Files) AsConfig() string {
	data := map[string]string{}
	for name, content := range f {
		data[path.Base(name)] = string(content)
	}
	return toYAML(data)
}

// AsSecrets is the files as a Secret's data: base name -> base64 content, as YAML.
func (f Files) AsSecrets() string {
	data := map[string]string{}
	for name, content := range f {
		data[path.Base(name)] = base64.StdEncoding.EncodeToString(content)
	}
	return toYAML(data)
}

// KubeVersion is .Capabilities.KubeVersion.
type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (k KubeVersion) String() string { return k.Version }

// GitVersion is the version as the API server reports it (Helm keeps the name).
func (k KubeVersion) GitVersion() string { return k.Version }

// VersionSet is .Capabilities.APIVersions.
type VersionSet []string

// Has says whether an API version (or "group/version/Kind") is available.
func (v VersionSet) Has(apiVersion string) bool {
	for _, known := range v {
		if known == apiVersion {
			return true
		}
	}
	return false
}

// Capabilities is .Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion map[string]string
}

// builtinAPIVersions are the API versions of Kubernetes 1.25 and later that Helm's default
// capabilities list; --api-versions adds others (a CRD's group/version).
var builtinAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "policy/v1",
	"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1",
	"scheduling.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
	"apiextensions.k8s.io/v1", "admissionregistration.k8s.io/v1", "certificates.k8s.io/v1",
	"events.k8s.io/v1", "node.k8s.io/v1", "authentication.k8s.io/v1", "authorization.k8s.io/v1",
}

func newCapabilities(kubeVersion string, extra []string) (*Capabilities, error) {
	v, err := semver.NewVersion(kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("invalid kube version %q: %s", kubeVersion, err)
	}
	versions := append(VersionSet{}, builtinAPIVersions...)
	versions = append(versions, extra...)
	sort.Strings(versions)
	return &Capabilities{
		KubeVersion: KubeVersion{
			Version: "v" + v.String(), Major: fmt.Sprint(v.Major()), Minor: fmt.Sprint(v.Minor()),
		},
		APIVersions: versions,
		HelmVersion: map[string]string{"Version": "v3"},
	}, nil
}

// checkKubeVersion refuses a cluster version outside Chart.yaml's kubeVersion, as Helm does.
func checkKubeVersion(meta *Metadata, caps *Capabilities) error {
	if meta.KubeVersion == "" {
		return nil
	}
	constraint, err := semver.NewConstraint(meta.KubeVersion)
	if err != nil {
		return fmt.Errorf("invalid kubeVersion %q in Chart.yaml: %s", meta.KubeVersion, err)
	}
	version, err := semver.NewVersion(caps.KubeVersion.Version)
	if err != nil {
		return err
	}
	if !constraint.Check(version) {
		return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s",
			meta.KubeVersion, caps.KubeVersion.Version)
	}
	return nil
}
