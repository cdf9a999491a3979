package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ReadUnchecked reads the YAML file at path and applies the ZCC_* overrides
// found in env (KEY=VALUE entries; the process environment is not read)
// and the defaults, without reading secret files or validating: for tools
// that only need to know which files and directories a node will use
// (`service install`). Unknown keys and malformed values are errors naming
// the key and the file.
func ReadUnchecked(path string, env []string) (*Config, error) {
	var c Config
	if err := decodeFile(path, &c); err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var probs []string
	applyEnv(reflect.ValueOf(&c).Elem(), "ZCC", "", func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, &probs)
	if len(probs) > 0 {
		return nil, &Error{File: path, Problems: probs}
	}
	c.SetDefaults()
	return &c, nil
}

// applyEnv overrides fields from ZCC_* variables read with lookup, walking
// yaml tags.
func applyEnv(v reflect.Value, env, key string, lookup func(string) (string, bool), probs *[]string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := env + "_" + strings.ToUpper(tag)
		k := tag
		if key != "" {
			k = key + "." + tag
		}
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			applyEnv(fv, name, k, lookup, probs)
			continue
		}
		s, ok := lookup(name)
		if !ok {
			continue
		}
		if err := setField(fv, s); err != nil {
			*probs = append(*probs, fmt.Sprintf("%s (from %s): %v", k, name, err))
		}
	}
}

func setField(fv reflect.Value, s string) error {
	switch fv.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration like 5s")
		}
		fv.SetInt(int64(d))
	case string:
		fv.SetString(s)
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not true or false")
		}
		fv.SetBool(b)
	case []string:
		var out []string
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
		fv.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// yamlProblems turns a YAML decoding error into problems that name the key
// at fault: "line 5: cannot unmarshal …" becomes "etcd.session_ttl (line
// 5): cannot unmarshal …".
func yamlProblems(doc []byte, err error) []string {
	var root yaml.Node
	_ = yaml.Unmarshal(doc, &root)
	keys := map[int]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				keys[k.Line] = p
				walk(n.Content[i+1], p)
			}
		}
	}
	walk(&root, "")
	var lines []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		lines = te.Errors
	} else {
		lines = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if m := yamlLine.FindStringSubmatch(l); m != nil {
			n, err := strconv.Atoi(m[1])
			if key, ok := keys[n]; ok && err == nil {
				l = key + " (" + strings.TrimSuffix(m[0], ": ") + "): " + strings.TrimPrefix(l, m[0])
			}
		}
		out = append(out, l)
	}
	return out
}

// decodeFile decodes the YAML file at path into c, refusing unknown keys.
// Errors are *Error naming the file and, for YAML problems, the key and line.
func decodeFile(path string, c *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return &Error{File: path, Problems: []string{err.Error()}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return &Error{File: path, Problems: yamlProblems(b, err)}
	}
	return nil
}
