package kubelet

import "strings"

// expand does what the kubelet does to a container's command, args and
// env values before it starts the container (API reference,
// Container.command: "Variable references $(VAR_NAME) are expanded using
// the container's environment. If a variable cannot be resolved, the
// reference in the input string will be unchanged. Double $$ are reduced
// to a single $, which allows for escaping the $(VAR_NAME) syntax"). It
// follows the kubelet's own implementation,
// k8s.io/kubernetes/third_party/forked/golang/expansion (Expand): a $
// followed by ( up to the next ) is a reference, $$ is one $, and any
// other $ (a lone one at the end included) stays as it is.
func expand(input string, mapping func(string) (string, bool)) string {
	var b strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] != '$' || cursor+1 >= len(input) {
			continue
		}
		b.WriteString(input[checkpoint:cursor])
		read, isVar, advance := readReference(input[cursor+1:])
		switch {
		case !isVar:
			b.WriteString(read)
		default:
			if v, ok := mapping(read); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + read + ")")
			}
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	b.WriteString(input[checkpoint:])
	return b.String()
}

// readReference reads what follows a $: the name of a $(NAME) reference,
// or the text to copy as it is, and how many bytes it took.
func readReference(input string) (read string, isVar bool, advance int) {
	switch input[0] {
	case '$':
		return "$", false, 1 // $$ is one $
	case '(':
		if i := strings.IndexByte(input, ')'); i > 0 {
			return input[1:i], true, i + 1
		}
		return "$(", false, 1 // no closing ): copied as it is
	}
	return "$" + input[:1], false, 1
}

// expansionOf is the lookup of the names defined so far.
func expansionOf(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}
