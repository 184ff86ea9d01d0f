package main

// Values as Helm builds them: each YAML file read through JSON (so numbers are float64, as
// Helm's values are), the user's files merged in order, --set applied on top, then the
// chart's defaults filled in under them; a user's null removes a default.

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	yaml "gopkg.in/yaml.v2"
)

// readValues reads a values document as Helm does (YAML, then JSON's types).
func readValues(data []byte) (map[string]interface{}, error) {
	var doc interface{}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc == nil {
		return map[string]interface{}{}, nil
	}
	asJSON, err := json.Marshal(jsonCompatible(doc))
	if err != nil {
		return nil, err
	}
	values := map[string]interface{}{}
	if err := json.Unmarshal(asJSON, &values); err != nil {
		return nil, fmt.Errorf("error unmarshaling JSON: %s", err)
	}
	return values, nil
}

// jsonCompatible turns yaml.v2's map[interface{}]interface{} into string-keyed maps.
func jsonCompatible(v interface{}) interface{} {
	switch typed := v.(type) {
	case map[interface{}]interface{}:
		out := make(map[string]interface{}, len(typed))
		for k, item := range typed {
			out[fmt.Sprint(k)] = jsonCompatible(item)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(typed))
		for i, item := range typed {
			out[i] = jsonCompatible(item)
		}
		return out
	default:
		return v
	}
}

func mergedValues(defaults map[string]interface{}, files, sets []string) (map[string]interface{}, error) {
	user := map[string]interface{}{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		values, err := readValues(data)
		if err != nil {
			return nil, fmt.Errorf("failed to parse %s: %s", file, err)
		}
		user = mergeMaps(user, values)
	}
	for _, set := range sets {
		if err := applySet(user, set); err != nil {
			return nil, fmt.Errorf("failed parsing --set data: %s", err)
		}
	}
	return coalesce(user, deepCopy(defaults)), nil
}

// mergeMaps merges b over a: tables merge, anything else in b replaces a's.
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bTable, ok := v.(map[string]interface{}); ok {
			if aTable, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(aTable, bTable)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// coalesce fills the user's values with the chart's defaults; a user's null deletes the key.
func coalesce(user, defaults map[string]interface{}) map[string]interface{} {
	for key, def := range defaults {
		value, set := user[key]
		switch {
		case !set:
			user[key] = def
		case value == nil:
			delete(user, key)
		default:
			userTable, userIsTable := value.(map[string]interface{})
			defTable, defIsTable := def.(map[string]interface{})
			if userIsTable && defIsTable {
				user[key] = coalesce(userTable, defTable)
			} else if userIsTable != defIsTable && def != nil {
				fmt.Fprintf(os.Stderr, "coalesce.go: warning: cannot overwrite table with non table for %s\n", key)
			}
		}
	}
	return user
}

func deepCopy(v map[string]interface{}) map[string]interface{} {
	data, _ := json.Marshal(v)
	out := map[string]interface{}{}
	_ = json.Unmarshal(data, &out)
	return out
}

// applySet applies one --set a.b.c=value (comma-separated pairs; {x,y} is a list; "\." a
// literal dot) with Helm's types: true/false, null, integers (int64), else strings.
func applySet(values map[string]interface{}, set string) error {
	for _, pair := range splitOutside(set, ',') {
		eq := strings.Index(pair, "=")
		if eq < 0 {
			return fmt.Errorf("key %q has no value", pair)
		}
		keys := splitKey(pair[:eq])
		raw := pair[eq+1:]
		var value interface{}
		if strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			items := []interface{}{}
			for _, item := range strings.Split(raw[1:len(raw)-1], ",") {
				if item != "" {
					items = append(items, typedValue(item))
				}
			}
			value = items
		} else {
			value = typedValue(raw)
		}
		table := values
		for _, key := range keys[:len(keys)-1] {
			next, ok := table[key].(map[string]interface{})
			if !ok {
				next = map[string]interface{}{}
				table[key] = next
			}
			table = next
		}
		table[keys[len(keys)-1]] = value
	}
	return nil
}

func typedValue(raw string) interface{} {
	switch raw {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if raw == "0" || (len(raw) > 0 && raw[0] != '0' && raw[0] != '+') {
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			return n
		}
	}
	return raw
}

func splitOutside(s string, sep rune) []string {
	var parts []string
	depth, start := 0, 0
	for i, r := range s {
		switch {
		case r == '{':
			depth++
		case r == '}':
			depth--
		case r == sep && depth == 0 && (i == 0 || s[i-1] != '\\'):
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func splitKey(key string) []string {
	var keys []string
	var current strings.Builder
	for i := 0; i < len(key); i++ {
		switch {
		case key[i] == '\\' && i+1 < len(key):
			current.WriteByte(key[i+1])
			i++
		case key[i] == '.':
			keys = append(keys, current.String())
			current.Reset()
		default:
			current.WriteByte(key[i])
		}
	}
	return append(keys, current.String())
}
