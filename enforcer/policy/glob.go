package policy

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// pathMax is the kernel's PATH_MAX: no resolved path is longer, so neither is
// a pattern that could match one.
const pathMax = 4096

// globKind picks the matching strategy, so the common patterns (an exact
// file, "a directory and everything beneath it") cost one string compare.
type globKind uint8

const (
	globLiteral globKind = iota // no wildcard: exact compare
	globTree                    // "/dir/**" with a literal /dir: dir itself or beneath it
	globGeneral                 // anything else: component-wise match
)

// glob is a compiled absolute path pattern (docs/design.md §5): `*` matches within
// one component, `?` one character other than '/', and `**` as a whole
// component matches zero or more components. There is no escaping: resolved
// paths with a literal '*' or '?' are matched by the wildcard anyway.
type glob struct {
	src   string
	kind  globKind
	lit   string      // globLiteral: the path; globTree: the directory ("" for "/**")
	comps []component // globGeneral
}

type component struct {
	pat      string
	globstar bool // "**"
	literal  bool // no '*' or '?'
}

// compileGlob validates and compiles an absolute path pattern. The errors are
// phrased to be shown after the pattern's position.
func compileGlob(pat string) (glob, error) {
	switch {
	case pat == "":
		return glob{}, errors.New("empty path pattern")
	case strings.IndexByte(pat, 0) >= 0:
		return glob{}, errors.New("path pattern contains a NUL byte")
	case !utf8.ValidString(pat):
		return glob{}, errors.New("path pattern is not valid UTF-8")
	case pat[0] != '/':
		return glob{}, errors.New("path pattern must be absolute (start with /): rules match the resolved object, never the spelling the watchee used")
	case len(pat) > pathMax:
		return glob{}, errors.New("path pattern is longer than PATH_MAX (4096)")
	}
	g := glob{src: pat}
	if pat == "/" {
		g.lit = "/"
		return g, nil
	}
	parts := strings.Split(pat[1:], "/")
	for i, c := range parts {
		switch {
		case c == "" && i == len(parts)-1:
			return glob{}, errors.New("path pattern ends in '/': resolved paths never do; drop it, or add ** to match beneath")
		case c == "":
			return glob{}, errors.New("path pattern has an empty component (//)")
		case c == "." || c == "..":
			return glob{}, errors.New("path pattern has a " + c + " component: resolved paths never do")
		case c == "**":
			g.comps = append(g.comps, component{pat: c, globstar: true})
		case strings.Contains(c, "**"):
			return glob{}, errors.New("** must be a whole path component (like /a/**/b), not part of " + quote(c))
		default:
			g.comps = append(g.comps, component{pat: c, literal: !strings.ContainsAny(c, "*?")})
		}
	}
	allLiteral := true
	for _, c := range g.comps {
		allLiteral = allLiteral && c.literal
	}
	switch {
	case allLiteral:
		g.kind, g.lit = globLiteral, pat
	case len(g.comps) >= 1 && g.comps[len(g.comps)-1].globstar && allLiteralComps(g.comps[:len(g.comps)-1]):
		g.kind, g.lit = globTree, strings.TrimSuffix(pat, "/**")
		if len(g.comps) == 1 {
			g.lit = ""
		}
	default:
		g.kind = globGeneral
	}
	return g, nil
}

func allLiteralComps(cs []component) bool {
	for _, c := range cs {
		if !c.literal {
			return false
		}
	}
	return true
}

// match reports whether the absolute path p matches. p is expected to be
// clean (as filepath.Clean returns it); a relative or empty p never matches.
// It does not allocate.
func (g *glob) match(p string) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	switch g.kind {
	case globLiteral:
		return p == g.lit
	case globTree:
		if g.lit == "" {
			return true
		}
		return strings.HasPrefix(p, g.lit) && (len(p) == len(g.lit) || p[len(g.lit)] == '/')
	}
	return matchComponents(g.comps, p)
}

// nextComponent returns the component of p that starts at s and the start of
// the one after it (past len(p) when there is none).
func nextComponent(p string, s int) (string, int) {
	e := strings.IndexByte(p[s:], '/')
	if e < 0 {
		return p[s:], len(p) + 1
	}
	return p[s : s+e], s + e + 1
}

// matchComponents is the classic single-backtrack wildcard algorithm lifted
// from characters to path components: `**` plays the part of `*`, and every
// other pattern component must match exactly one path component. Remembering
// only the latest `**` is enough because a later `**` can absorb anything an
// earlier one could, so the match is linear in len(p) times len(comps).
func matchComponents(comps []component, p string) bool {
	s := 1 // start of the next path component
	if p == "/" {
		s = len(p) + 1 // the root has no components
	}
	ci := 0
	starCi, starS := -1, 0
	for {
		if ci < len(comps) && comps[ci].globstar {
			starCi, starS = ci, s
			ci++
			continue
		}
		if s > len(p) {
			if ci == len(comps) {
				return true
			}
		} else if ci < len(comps) {
			c, next := nextComponent(p, s)
			if comps[ci].matches(c) {
				ci, s = ci+1, next
				continue
			}
		}
		if starCi < 0 || starS > len(p) {
			return false
		}
		_, starS = nextComponent(p, starS)
		ci, s = starCi+1, starS
	}
}

func (c *component) matches(s string) bool {
	if c.literal {
		return c.pat == s
	}
	return wildMatch(c.pat, s)
}

// wildMatch matches s against a pattern where `*` matches any run of
// characters and `?` exactly one (a UTF-8 character, or one byte of an invalid
// sequence). Single-backtrack, linear-ish, allocation-free.
func wildMatch(pat, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			switch c := pat[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, n := utf8.DecodeRuneInString(s[sx:])
					px, sx = px+1, sx+n
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px, sx = px+1, sx+1
					continue
				}
			}
		}
		if starPx < 0 || starSx >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starSx:])
		starSx += n
		px, sx = starPx+1, starSx
	}
	return true
}

// wildcard is a compiled flat pattern (xattr names, abstract socket names):
// `*` and `?` match any characters, '/' included.
type wildcard struct {
	src     string
	literal bool
}

func (w *wildcard) match(s string) bool {
	if w.literal {
		return w.src == s
	}
	return wildMatch(w.src, s)
}

func newWildcard(pat string) wildcard {
	return wildcard{src: pat, literal: !strings.ContainsAny(pat, "*?")}
}
