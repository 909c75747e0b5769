package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"airlock.dev/airlock/internal/yamlfile"
)

// maxValuesFile caps the size of one values file read at parse time.
const maxValuesFile = 16 << 20

// maxValuesNodes caps the nodes of inline values once anchors are expanded, so that aliases of
// aliases cannot grow without bound.
const maxValuesNodes = 100_000

// values reads charts[].values, a mapping, and re-encodes it as YAML with anchors expanded and
// scalars as written (tag: 1.20 stays 1.20, so that the charts package can warn about it).
func (p *parser) values(n *yaml.Node, field string) []byte {
	if n.Kind != yaml.MappingNode {
		p.Errorf(n, field, "must be a mapping of chart values, got %s", yamlfile.Describe(n))
		return nil
	}
	budget := maxValuesNodes
	c := expandNode(n, &budget)
	if c == nil {
		p.Errorf(n, field, "more than %d values once anchors are expanded; put them in a valuesFiles file", maxValuesNodes)
		return nil
	}
	if err := decodeValues(c); err != nil {
		p.Errorf(n, field, "%s", err)
		return nil
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		p.Errorf(n, field, "cannot be written back as YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil
	}
	return out
}

// expandNode copies n with every alias replaced by a copy of its anchor's value and anchors dropped.
// It returns nil when the copy would hold more than *budget nodes (which also ends a cycle).
func expandNode(n *yaml.Node, budget *int) *yaml.Node {
	n = yamlfile.Deref(n)
	if n == nil {
		return nil
	}
	if *budget--; *budget < 0 {
		return nil
	}
	c := *n
	c.Anchor = ""
	c.Content = nil
	for _, child := range n.Content {
		cc := expandNode(child, budget)
		if cc == nil {
			return nil
		}
		c.Content = append(c.Content, cc)
	}
	return &c
}

// valuesFiles reads charts[].valuesFiles: paths relative to the ImageSet file, each read now and
// checked to be YAML whose documents are mappings (helm merges the documents of one file).
func (p *parser) valuesFiles(n *yaml.Node, field string) (names []string, contents [][]byte) {
	if yamlfile.IsEmptyList(n) {
		p.Errorf(n, field, "empty list; leave valuesFiles out to use the chart's own values")
		return nil, nil
	}
	items, ok := p.List(n, field)
	if !ok {
		return nil, nil
	}
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		abs, ok := p.Path(item, itemField, "name a values file such as values/app.yaml")
		if !ok {
			continue
		}
		name := item.Value
		if slices.Contains(names, name) {
			p.Errorf(item, itemField, "%s listed twice", name)
			continue
		}
		data, err := readValuesFile(abs)
		if err == nil {
			err = checkValues(data)
		}
		if err != nil {
			p.Errorf(item, itemField, "%s%s", name, err)
			continue
		}
		names = append(names, name)
		contents = append(contents, data)
	}
	return names, contents
}

// readValuesFile reads a regular file of at most maxValuesFile bytes. Errors read as the rest of a
// message that starts with the file's name: ": no such file (looked for /abs/path)".
func readValuesFile(abs string) ([]byte, error) {
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf(": no such file (looked for %s)", abs)
	case err != nil:
		return nil, fmt.Errorf(": %s", unwrapPathError(err))
	case fi.IsDir():
		return nil, errors.New(": is a directory, not a values file")
	case !fi.Mode().IsRegular():
		return nil, errors.New(": not a regular file")
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf(": %s", unwrapPathError(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxValuesFile+1))
	if err != nil {
		return nil, fmt.Errorf(": %s", unwrapPathError(err))
	}
	if len(data) > maxValuesFile {
		return nil, fmt.Errorf(": larger than %d MiB; a values file this size is not values", maxValuesFile>>20)
	}
	return data, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// yamlLineRE finds the line in yaml.v3 syntax errors ("yaml: line 3: ...").
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// checkValues checks that data is YAML whose every document is a mapping or empty, as helm's
// loader.LoadValues reads a values file. Errors read as the rest of a message that starts with the
// file's name: ":3: invalid YAML: ...".
func checkValues(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			msg := err.Error()
			if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
				return fmt.Errorf(":%s: invalid YAML: %s", m[1], m[2])
			}
			return fmt.Errorf(": invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		}
		if len(doc.Content) == 0 {
			continue
		}
		v := yamlfile.Deref(doc.Content[0])
		if v.Kind != yaml.MappingNode && !yamlfile.IsNull(v) {
			return fmt.Errorf(":%d: must be a mapping of chart values, got %s", v.Line, yamlfile.Describe(v))
		}
		if err := decodeValues(v); err != nil {
			return fmt.Errorf(":%d: %s", v.Line, err)
		}
	}
}

// decodeValues decodes values as a map, as helm will: a node tree can be well formed and still not
// be values, such as a merge key (<<) whose value is not a mapping. yaml.v3 panics on some of these
// (a merged mapping whose key is a mapping); that is an error too.
func decodeValues(n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot be read as chart values (%v); the keys of chart values must be plain names", r)
		}
	}()
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return fmt.Errorf("cannot be read as chart values: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}
