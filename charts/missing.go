package charts

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template/parse"

	"helm.sh/helm/v4/pkg/chart/common"
)

// errorAt matches the engine's errors for `required` and `fail` ("execution error at
// (app/templates/deployment.yaml:13:53): image.tag is required", pkg/engine/engine.go:
// reformatExecErrorMsg) and for a template that does not parse (cleanupParseError).
var errorAt = regexp.MustCompile(`^(execution|parse) error at \(([^()]+)\): ((?s).*)$`)

// traceLocation matches the first line of the engine's other execution errors, a location
// ("app/templates/x.yaml:5:20") followed by "executing ... at <...>:" and the message.
var traceLocation = regexp.MustCompile(`^\S+:\d+(:\d+)?$`)

// nilValue finds the field a "nil pointer evaluating" error was evaluating.
var nilValue = regexp.MustCompile(`at <(\$?\.Values\.[A-Za-z0-9_.]+)>:`)

// renderFailure turns the engine's error into a *RenderError naming the template and line, with the
// message alone (the author's, for `required` and `fail`). For a `required` value, or a nil map
// on the way to a value, ValuePath is the value's path in the top chart's values, found by reading
// the template (docs/helm-charts.md section 4.3); the other `required` values that the values do not
// set are then added to Msg.
func renderFailure(label string, nodes []chartNode, vals common.Values, err error) *RenderError {
	re := &RenderError{Chart: label, Msg: err.Error()}
	loc, execErr := "", false
	if m := errorAt.FindStringSubmatch(re.Msg); m != nil {
		loc, re.Msg, execErr = m[2], m[3], m[1] == "execution"
	} else if lines := strings.Split(re.Msg, "\n"); len(lines) > 2 && traceLocation.MatchString(lines[0]) {
		loc, re.Msg = lines[0], strings.TrimSpace(lines[len(lines)-1])
		if v := nilValue.FindStringSubmatch(lines[1]); v != nil && strings.Contains(re.Msg, "nil pointer") {
			re.ValuePath = chartValuePath(nodeFor(nodes, locTemplate(loc)), fieldPath(v[1]))
		}
	}
	if loc == "" {
		return re
	}
	var col int
	re.Template, re.Line, col = splitLocation(loc)
	if execErr {
		re.ValuePath = requiredPath(nodes, re.Template, re.Line, col, re.Msg)
	}
	if re.ValuePath != "" {
		re.Msg += alsoRequired(nodes, vals, re.ValuePath)
	}
	return re
}

// splitLocation splits "file:line:col" or "file:line"; line and col are 0 when absent.
func splitLocation(loc string) (file string, line, col int) {
	file = loc
	var nums []int
	for range 2 {
		i := strings.LastIndexByte(file, ':')
		if i < 0 {
			break
		}
		n, err := strconv.Atoi(file[i+1:])
		if err != nil {
			break
		}
		nums = append([]int{n}, nums...)
		file = file[:i]
	}
	switch len(nums) {
	case 2:
		return file, nums[0], nums[1]
	case 1:
		return file, nums[0], 0
	}
	return file, 0, 0
}

func locTemplate(loc string) string {
	file, _, _ := splitLocation(loc)
	return file
}

// requiredPath is the value path of the `required` call at file:line:col. When no `required` call
// is there (the call is in a template the failing one includes: the engine names where the include
// is), it is the path of the `required` calls whose message is msg, if they all name one value.
func requiredPath(nodes []chartNode, file string, line, col int, msg string) string {
	at := fmt.Sprintf("%s:%d:%d", file, line, col)
	if n := nodeFor(nodes, file); n != nil {
		for _, c := range templateCalls(n, file) {
			if c.loc == at {
				return chartValuePath(n, c.path)
			}
		}
	}
	found := ""
	for i := range nodes {
		for _, c := range chartCalls(&nodes[i]) {
			if c.msg != msg {
				continue
			}
			p := chartValuePath(&nodes[i], c.path)
			if p == "" || found != "" && p != found {
				return ""
			}
			found = p
		}
	}
	return found
}

// chartValuePath is a value path of n's templates as a path in the top chart's values: a
// subchart's values are under its alias path ("db."), except globals, which are the top chart's.
func chartValuePath(n *chartNode, p string) string {
	if n == nil || p == "" || p == "global" || strings.HasPrefix(p, "global.") {
		return p
	}
	return n.prefix + p
}

// alsoRequired lists the other `required` values that the values do not set, found by reading the
// templates: only calls outside any if, with, range or define are counted (those run whatever the
// values), so that a value required only when a feature is on is not listed. "" when none.
func alsoRequired(nodes []chartNode, vals common.Values, known string) string {
	var more []string
	seen := map[string]bool{known: true}
	for i := range nodes {
		for _, c := range chartCalls(&nodes[i]) {
			p := chartValuePath(&nodes[i], c.path)
			if c.guarded || p == "" || seen[p] || isSet(vals, p) {
				continue
			}
			seen[p] = true
			more = append(more, fmt.Sprintf("%s (%s:%d)", p, locTemplate(c.loc), c.line))
		}
	}
	if len(more) == 0 {
		return ""
	}
	return "; also required, found by reading the templates: " + strings.Join(more, ", ")
}

// isSet says whether required would accept the value at p: present, not nil and not "".
func isSet(vals common.Values, p string) bool {
	if _, err := vals.Table(p); err == nil {
		return true
	}
	v, err := vals.PathValue(p)
	return err == nil && v != nil && v != ""
}

// requiredCall is one call of `required` in a template.
type requiredCall struct {
	loc     string // where the engine reports it failing: "app/templates/deployment.yaml:13:53"
	line    int
	msg     string // the author's message, when it is a string literal
	path    string // the value, relative to its chart's values; "" when not .Values.x or $.Values.x
	guarded bool   // inside if, with, range or define: it may not run
}

// chartCalls is every `required` call in n's templates, sorted by template name.
func chartCalls(n *chartNode) []requiredCall {
	var out []requiredCall
	for _, t := range n.ch.Templates {
		out = append(out, templateCalls(n, path.Join(n.full, t.Name))...)
	}
	slices.SortStableFunc(out, func(a, b requiredCall) int { return strings.Compare(a.loc, b.loc) })
	return out
}

// templateCalls parses one template of n, named as the engine names it
// ("app/charts/db/templates/statefulset.yaml"), and lists its `required` calls; none when it
// does not parse.
func templateCalls(n *chartNode, name string) []requiredCall {
	for _, t := range n.ch.Templates {
		if path.Join(n.full, t.Name) != name {
			continue
		}
		tree := parse.New(name)
		tree.Mode = parse.SkipFuncCheck
		trees := map[string]*parse.Tree{}
		if _, err := tree.Parse(string(t.Data), "", "", trees); err != nil {
			return nil
		}
		var w callWalker
		for _, k := range slices.Sorted(maps.Keys(trees)) {
			w.tree = trees[k]
			w.list(trees[k].Root, k != name)
		}
		return w.calls
	}
	return nil
}

// callWalker collects the `required` calls of a parse tree.
type callWalker struct {
	tree  *parse.Tree
	calls []requiredCall
}

func (w *callWalker) list(l *parse.ListNode, guarded bool) {
	if l == nil {
		return
	}
	for _, node := range l.Nodes {
		switch n := node.(type) {
		case *parse.ActionNode:
			w.pipe(n.Pipe, guarded)
		case *parse.TemplateNode:
			w.pipe(n.Pipe, guarded)
		case *parse.IfNode:
			w.branch(&n.BranchNode, guarded)
		case *parse.WithNode:
			w.branch(&n.BranchNode, guarded)
		case *parse.RangeNode:
			w.branch(&n.BranchNode, guarded)
		}
	}
}

func (w *callWalker) branch(b *parse.BranchNode, guarded bool) {
	w.pipe(b.Pipe, guarded)
	w.list(b.List, true)
	w.list(b.ElseList, true)
}

// pipe visits each command of a pipeline, and the pipelines in its arguments (parentheses).
func (w *callWalker) pipe(p *parse.PipeNode, guarded bool) {
	if p == nil {
		return
	}
	for i, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			switch a := arg.(type) {
			case *parse.PipeNode:
				w.pipe(a, guarded)
			case *parse.ChainNode:
				if sub, ok := a.Node.(*parse.PipeNode); ok {
					w.pipe(sub, guarded)
				}
			}
		}
		if id, ok := cmd.Args[0].(*parse.IdentifierNode); !ok || id.Ident != "required" {
			continue
		}
		w.calls = append(w.calls, w.call(p, i, guarded))
	}
}

// call reads the `required` command p.Cmds[i]: `required "msg" .Values.x`, or in a pipeline
// `.Values.x | required "msg"`, where the value is the previous command.
func (w *callWalker) call(p *parse.PipeNode, i int, guarded bool) requiredCall {
	cmd := p.Cmds[i]
	loc, _ := w.tree.ErrorContext(cmd)
	_, line, _ := splitLocation(loc)
	c := requiredCall{loc: loc, line: line, guarded: guarded}
	if len(cmd.Args) > 1 {
		if s, ok := cmd.Args[1].(*parse.StringNode); ok {
			c.msg = s.Text
		}
	}
	switch {
	case len(cmd.Args) == 3:
		c.path = valuesPath(cmd.Args[2])
	case len(cmd.Args) == 2 && i > 0 && len(p.Cmds[i-1].Args) == 1:
		c.path = valuesPath(p.Cmds[i-1].Args[0])
	}
	return c
}

// valuesPath is "image.tag" for .Values.image.tag, $.Values.image.tag or either in parentheses;
// "" for anything else (index, a variable, a field of a changed dot).
func valuesPath(n parse.Node) string {
	switch n := n.(type) {
	case *parse.FieldNode:
		if len(n.Ident) > 1 && n.Ident[0] == "Values" {
			return strings.Join(n.Ident[1:], ".")
		}
	case *parse.VariableNode:
		if len(n.Ident) > 2 && n.Ident[0] == "$" && n.Ident[1] == "Values" {
			return strings.Join(n.Ident[2:], ".")
		}
	case *parse.PipeNode:
		if len(n.Decl) == 0 && len(n.Cmds) == 1 && len(n.Cmds[0].Args) == 1 {
			return valuesPath(n.Cmds[0].Args[0])
		}
	}
	return ""
}

// fieldPath is "image.tag" for ".Values.image.tag" or "$.Values.image.tag".
func fieldPath(field string) string {
	_, p, _ := strings.Cut(field, ".Values.")
	return p
}
