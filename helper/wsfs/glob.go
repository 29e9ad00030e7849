package wsfs

import (
	"strings"
	"unicode/utf8"
)

// pattern is a workspace glob as REANA matches it (reana-commons
// workspace.glob, wcmatch with GLOBSTAR|DOTGLOB): "*", "?" and "[...]"
// stay within one path component but do match a leading dot, and a
// component that is exactly "**" matches any number of components, none
// included. An unclosed "[" is an ordinary character, as in fnmatch.
type pattern struct {
	segs []segment
}

type segment struct {
	globstar bool
	toks     []token
}

type tokenKind int

const (
	tokLiteral tokenKind = iota
	tokAny               // ?
	tokStar              // *
	tokClass             // [...]
)

type token struct {
	kind   tokenKind
	r      rune
	negate bool
	ranges [][2]rune
}

// hasMeta reports whether p is a pattern rather than a plain path.
func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }

// compilePattern validates p like a path (see splitPath) and compiles it.
// The empty pattern matches nothing.
func compilePattern(p string) (pattern, error) {
	parts, err := splitPath(p)
	if err != nil {
		return pattern{}, err
	}
	var pat pattern
	for _, part := range parts {
		if part == "**" {
			if n := len(pat.segs); n > 0 && pat.segs[n-1].globstar {
				continue // "**/**" is "**"
			}
			pat.segs = append(pat.segs, segment{globstar: true})
			continue
		}
		pat.segs = append(pat.segs, segment{toks: tokenize(part)})
	}
	return pat, nil
}

func tokenize(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		switch s[i] {
		case '*':
			if len(toks) == 0 || toks[len(toks)-1].kind != tokStar {
				toks = append(toks, token{kind: tokStar})
			}
			i++
			continue
		case '?':
			toks = append(toks, token{kind: tokAny})
			i++
			continue
		case '[':
			if t, n, ok := parseClass(s[i:]); ok {
				toks = append(toks, t)
				i += n
				continue
			}
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		toks = append(toks, token{kind: tokLiteral, r: r})
		i += n
	}
	return toks
}

// parseClass parses the bracket expression at the start of s ("[" included)
// and returns it with its length; ok is false when it is not closed.
func parseClass(s string) (t token, n int, ok bool) {
	t.kind = tokClass
	i := 1
	if i < len(s) && (s[i] == '!' || s[i] == '^') {
		t.negate = true
		i++
	}
	first := true
	for i < len(s) {
		if s[i] == ']' && !first {
			return t, i + 1, true
		}
		first = false
		lo, w := utf8.DecodeRuneInString(s[i:])
		i += w
		hi := lo
		if i+1 < len(s) && s[i] == '-' && s[i+1] != ']' {
			hi, w = utf8.DecodeRuneInString(s[i+1:])
			i += 1 + w
		}
		t.ranges = append(t.ranges, [2]rune{lo, hi})
	}
	return token{}, 0, false
}

func (t *token) matches(r rune) bool {
	switch t.kind {
	case tokAny:
		return true
	case tokClass:
		in := false
		for _, rg := range t.ranges {
			if rg[0] <= r && r <= rg[1] {
				in = true
				break
			}
		}
		return in != t.negate
	}
	return t.r == r
}

// match reports whether the cleaned workspace-relative path rel matches.
func (p pattern) match(rel string) bool {
	if len(p.segs) == 0 || rel == "" {
		return false
	}
	return matchSegs(p.segs, strings.Split(rel, "/"))
}

func matchSegs(segs []segment, parts []string) bool {
	if len(segs) == 0 {
		return len(parts) == 0
	}
	if segs[0].globstar {
		for i := 0; i <= len(parts); i++ {
			if matchSegs(segs[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	return len(parts) > 0 && matchComponent(segs[0].toks, parts[0]) && matchSegs(segs[1:], parts[1:])
}

// matchComponent is the classic single-star-backtracking wildcard match,
// linear in practice.
func matchComponent(toks []token, s string) bool {
	rs := []rune(s)
	ti, si := 0, 0
	star, starSi := -1, 0
	for si < len(rs) {
		switch {
		case ti < len(toks) && toks[ti].kind == tokStar:
			star, starSi = ti, si
			ti++
		case ti < len(toks) && toks[ti].matches(rs[si]):
			ti++
			si++
		case star >= 0:
			starSi++
			ti, si = star+1, starSi
		default:
			return false
		}
	}
	for ti < len(toks) && toks[ti].kind == tokStar {
		ti++
	}
	return ti == len(toks)
}
