package main

// The template engine as Helm runs it: one template set holding every file of templates/
// (named "<chart>/templates/x.yaml"), missingkey=zero with "<no value>" removed, sprig's
// functions less env and expandenv, and Helm's own: include, tpl, required, toYaml,
// fromYaml, fromYamlArray, toJson, fromJson, fromJsonArray and lookup (which finds nothing,
// as with `helm template`). Partials (templates/_*) are parsed but not rendered.

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	yaml "gopkg.in/yaml.v2"
)

const (
	warnStart    = "HELM_ERR_START"
	warnEnd      = "HELM_ERR_END"
	maxRecursion = 1000
)

var warnPattern = regexp.MustCompile(warnStart + `(.*)` + warnEnd)

func renderTemplates(chart *Chart, top map[string]interface{}) (map[string]string, error) {
	names := make([]string, 0, len(chart.Templates))
	for name := range chart.Templates {
		names = append(names, name)
	}
	sort.Strings(names)
	set, err := parseSet(chart.Templates, names, "", "")
	if err != nil {
		return nil, err
	}
	rendered := map[string]string{}
	for _, name := range names {
		if strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		vals := make(map[string]interface{}, len(top)+1)
		for k, v := range top {
			vals[k] = v
		}
		vals["Template"] = map[string]interface{}{
			"Name": name, "BasePath": path.Join(chart.Metadata.Name, "templates"),
		}
		var out strings.Builder
		if err := set.ExecuteTemplate(&out, name, vals); err != nil {
			return nil, cleanExecError(name, err)
		}
		rendered[name] = strings.ReplaceAll(out.String(), "<no value>", "")
	}
	return rendered, nil
}

// parseSet parses every template (and, for tpl, one more named extraName) into one set
// whose include and tpl functions see that set.
func parseSet(sources map[string]string, names []string, extraName, extra string) (*template.Template, error) {
	set := template.New("gotpl").Option("missingkey=zero")
	set.Funcs(funcMap(set, sources, names))
	for _, name := range names {
		if _, err := set.New(name).Parse(sources[name]); err != nil {
			return nil, cleanParseError(err)
		}
	}
	if extraName != "" {
		if _, err := set.New(extraName).Parse(extra); err != nil {
			return nil, cleanParseError(err)
		}
	}
	return set, nil
}

func funcMap(set *template.Template, sources map[string]string, names []string) template.FuncMap {
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	depth := map[string]int{}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if depth[name] > maxRecursion {
			return "", fmt.Errorf("rendering template has a nested reference name: %s: unable to execute template", name)
		}
		depth[name]++
		defer func() { depth[name]-- }()
		var out strings.Builder
		err := set.ExecuteTemplate(&out, name, data)
		return out.String(), err
	}
	funcs["tpl"] = func(text string, vals map[string]interface{}) (string, error) {
		name := "tpl"
		if tmpl, ok := vals["Template"].(map[string]interface{}); ok {
			name = fmt.Sprint(tmpl["Name"])
		}
		inner, err := parseSet(sources, without(names, name), name, text)
		if err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %s", text, err)
		}
		var out strings.Builder
		if err := inner.ExecuteTemplate(&out, name, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %s", text, err)
		}
		return strings.ReplaceAll(out.String(), "<no value>", ""), nil
	}
	funcs["required"] = func(warn string, val interface{}) (interface{}, error) {
		if val == nil {
			return val, fmt.Errorf("%s%s%s", warnStart, warn, warnEnd)
		}
		if s, ok := val.(string); ok && s == "" {
			return val, fmt.Errorf("%s%s%s", warnStart, warn, warnEnd)
		}
		return val, nil
	}
	funcs["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["fromYamlArray"] = fromYAMLArray
	funcs["toJson"] = toJSON
	funcs["fromJson"] = fromJSON
	funcs["fromJsonArray"] = fromJSONArray
	return funcs
}

func without(names []string, name string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

// cleanParseError is Helm's "parse error at (file:line): message".
func cleanParseError(err error) error {
	tokens := strings.Split(err.Error(), ": ")
	if len(tokens) == 1 {
		return fmt.Errorf("parse error: %s", err)
	}
	return fmt.Errorf("parse error at (%s): %s", tokens[1], tokens[len(tokens)-1])
}

// cleanExecError is Helm's "execution error at (file:line:col): message" for `required`;
// other failures (fail, a nil pointer) keep Go's own message, as in Helm.
func cleanExecError(name string, err error) error {
	if _, ok := err.(template.ExecError); !ok {
		return err
	}
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) != 3 {
		return fmt.Errorf("execution error in (%s): %s", name, err)
	}
	if parts := warnPattern.FindStringSubmatch(tokens[2]); len(parts) >= 2 {
		return fmt.Errorf("execution error at (%s): %s", tokens[1], parts[1])
	}
	return err
}

// toYAML is Helm's: through JSON, keys sorted, no trailing newline, "" on error.
func toYAML(v interface{}) string {
	asJSON, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var doc interface{}
	if err := yaml.Unmarshal(asJSON, &doc); err != nil {
		return ""
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m, err := readValues([]byte(s))
	if err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	var doc interface{}
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		return []interface{}{err.Error()}
	}
	asJSON, _ := json.Marshal(jsonCompatible(doc))
	var out []interface{}
	if err := json.Unmarshal(asJSON, &out); err != nil {
		return []interface{}{err.Error()}
	}
	return out
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	var out []interface{}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return []interface{}{err.Error()}
	}
	return out
}
