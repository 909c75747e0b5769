package charts

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// NumberWarnings lists the values of a YAML values document that Helm reads as other than what is
// written: `tag: 1.20` is the number 1.2 for Helm (and for `helm template -f`), so a chart renders
// image:1.2. Each warning names the value's path ("image.tag") and says to quote it.
func NumberWarnings(doc []byte) []string {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil
	}
	var out []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], strings.TrimPrefix(path+"."+n.Content[i].Value, "."))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			if w := numberWarning(n); w != "" {
				out = append(out, path+": "+w)
			}
		}
	}
	walk(&root, "")
	return out
}

// numberWarning says how Helm reads an unquoted scalar whose value it does not keep as written
// (1.20 is 1.2, 010 is 8, 0x10 is 16, yes is true), or "" when it reads as written. Helm reads values
// with sigs.k8s.io/yaml (YAML 1.1 through JSON), so that is what reads it here.
func numberWarning(n *yaml.Node) string {
	if n.Style != 0 && n.Style != yaml.FlowStyle {
		return ""
	}
	var m map[string]any
	if err := sigsyaml.Unmarshal([]byte("v: "+n.Value), &m); err != nil {
		return ""
	}
	var read string
	switch v := m["v"].(type) {
	case float64:
		read = strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		read = strconv.FormatBool(v)
	default:
		return ""
	}
	if read == n.Value {
		return ""
	}
	return fmt.Sprintf("%s is %s to Helm; quote it ('%s') if it is a version or a tag", n.Value, read, n.Value)
}
