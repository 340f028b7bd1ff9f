package config

import (
	"strconv"
	"strings"
)

// keyIndex maps key paths of a TOML document to the line they are defined
// on. BurntSushi/toml keeps key positions private, so this is a small
// scanner of its own, run only on documents the toml package has already
// accepted: on anything it does not understand it stops and keeps what it
// has (a missing line number makes an error message vaguer, never wrong).
//
// Paths are dotted; array elements carry their index: "relay.url",
// "readers[1].uri". plain holds the same keys without indices, each with the
// lines of every occurrence in document order ("readers.uri" → [3, 7]),
// which is how the toml package reports undecoded keys.
type keyIndex struct {
	lines map[string]int
	plain map[string][]int
}

func (ix *keyIndex) line(path string) int { return ix.lines[path] }

// maxDepth bounds nesting of arrays and inline tables (hostile input).
const maxDepth = 32

type keyScanner struct {
	s    string
	i    int
	line int
	ix   *keyIndex
	aot  map[string]int // array-of-tables header path → current index
}

func indexKeys(src string) *keyIndex {
	ix := &keyIndex{lines: map[string]int{}, plain: map[string][]int{}}
	sc := &keyScanner{s: src, line: 1, ix: ix, aot: map[string]int{}}
	sc.document()
	return ix
}

func (sc *keyScanner) record(path string, line int) {
	if _, dup := sc.ix.lines[path]; !dup {
		sc.ix.lines[path] = line
	}
	p := stripIndices(path)
	sc.ix.plain[p] = append(sc.ix.plain[p], line)
}

func stripIndices(path string) string {
	if !strings.Contains(path, "[") {
		return path
	}
	var b strings.Builder
	depth := 0
	for _, r := range path {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (sc *keyScanner) eof() bool { return sc.i >= len(sc.s) }
func (sc *keyScanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.s[sc.i]
}

func (sc *keyScanner) adv() {
	if sc.eof() {
		return
	}
	if sc.s[sc.i] == '\n' {
		sc.line++
	}
	sc.i++
}

// space skips blanks and, if nl, newlines and comments too.
func (sc *keyScanner) space(nl bool) {
	for !sc.eof() {
		switch c := sc.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			sc.adv()
		case c == '#':
			for !sc.eof() && sc.peek() != '\n' {
				sc.adv()
			}
		case c == '\n' && nl:
			sc.adv()
		default:
			return
		}
	}
}

func (sc *keyScanner) document() {
	prefix := ""
	for {
		sc.space(true)
		if sc.eof() {
			return
		}
		start := sc.i
		line := sc.line
		if sc.peek() == '[' {
			sc.adv()
			aot := sc.peek() == '['
			if aot {
				sc.adv()
			}
			sc.space(false)
			parts, ok := sc.key()
			if !ok {
				return
			}
			path := strings.Join(parts, ".")
			for range 2 {
				sc.space(false)
				if sc.peek() == ']' {
					sc.adv()
				}
			}
			if aot {
				n, seen := sc.aot[path]
				if seen {
					n++
				}
				sc.aot[path] = n
				prefix = sc.withAOT(path)
			} else {
				prefix = sc.withAOT(path)
			}
			sc.record(stripTrailingIndex(prefix), line)
		} else {
			parts, ok := sc.key()
			if !ok {
				return
			}
			path := join(prefix, strings.Join(parts, "."))
			sc.record(path, line)
			sc.space(false)
			if sc.peek() != '=' {
				return
			}
			sc.adv()
			sc.space(false)
			if !sc.value(path, 0) {
				return
			}
		}
		if sc.i == start { // no progress: give up rather than loop
			return
		}
	}
}

// withAOT rewrites a header path so that every array-of-tables prefix
// carries its current index: "readers.sub" → "readers[2].sub".
func (sc *keyScanner) withAOT(path string) string {
	parts := strings.Split(path, ".")
	out := make([]string, 0, len(parts))
	for i := range parts {
		p := strings.Join(parts[:i+1], ".")
		seg := parts[i]
		if n, ok := sc.aot[p]; ok {
			seg += "[" + strconv.Itoa(n) + "]"
		}
		out = append(out, seg)
	}
	return strings.Join(out, ".")
}

func stripTrailingIndex(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i > 0 {
			return p[:i]
		}
	}
	return p
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// key reads a possibly dotted, possibly quoted key.
func (sc *keyScanner) key() ([]string, bool) {
	var parts []string
	for {
		sc.space(false)
		switch c := sc.peek(); {
		case c == '"' || c == '\'':
			s, ok := sc.str()
			if !ok {
				return nil, false
			}
			parts = append(parts, s)
		case isBare(c):
			j := sc.i
			for !sc.eof() && isBare(sc.peek()) {
				sc.adv()
			}
			parts = append(parts, sc.s[j:sc.i])
		default:
			return nil, false
		}
		sc.space(false)
		if sc.peek() != '.' {
			return parts, true
		}
		sc.adv()
	}
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// str reads a basic, literal or multi-line string and returns its raw body
// (escapes are not interpreted; keys with escapes are not ours anyway).
func (sc *keyScanner) str() (string, bool) {
	q := sc.peek()
	triple := strings.HasPrefix(sc.s[sc.i:], strings.Repeat(string(q), 3))
	n := 1
	if triple {
		n = 3
	}
	for range n {
		sc.adv()
	}
	start := sc.i
	for !sc.eof() {
		c := sc.peek()
		if c == '\\' && q == '"' {
			sc.adv()
			sc.adv()
			continue
		}
		if c == '\n' && !triple {
			return "", false
		}
		if c == q && (!triple || strings.HasPrefix(sc.s[sc.i:], strings.Repeat(string(q), 3))) {
			end := sc.i
			if triple {
				// Up to two extra quotes may close a multi-line string.
				for strings.HasPrefix(sc.s[sc.i+1:], strings.Repeat(string(q), 3)) {
					sc.adv()
					end++
				}
			}
			for range n {
				sc.adv()
			}
			return sc.s[start:end], true
		}
		sc.adv()
	}
	return "", false
}

// value skips one value, recording keys of inline tables and indexing
// array elements.
func (sc *keyScanner) value(path string, depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch sc.peek() {
	case '"', '\'':
		_, ok := sc.str()
		return ok
	case '[':
		sc.adv()
		for n := 0; ; n++ {
			sc.space(true)
			if sc.eof() {
				return false
			}
			if sc.peek() == ']' {
				sc.adv()
				return true
			}
			start := sc.i
			elem := path + "[" + strconv.Itoa(n) + "]"
			if _, dup := sc.ix.lines[elem]; !dup {
				sc.ix.lines[elem] = sc.line
			}
			if !sc.value(elem, depth+1) {
				return false
			}
			sc.space(true)
			if sc.peek() == ',' {
				sc.adv()
			} else if sc.peek() != ']' || sc.i == start {
				return false
			}
		}
	case '{':
		sc.adv()
		for {
			sc.space(false)
			if sc.eof() {
				return false
			}
			if sc.peek() == '}' {
				sc.adv()
				return true
			}
			line := sc.line
			parts, ok := sc.key()
			if !ok {
				return false
			}
			k := join(path, strings.Join(parts, "."))
			sc.record(k, line)
			sc.space(false)
			if sc.peek() != '=' {
				return false
			}
			sc.adv()
			sc.space(false)
			if !sc.value(k, depth+1) {
				return false
			}
			sc.space(false)
			if sc.peek() == ',' {
				sc.adv()
			} else if sc.peek() != '}' {
				return false
			}
		}
	default:
		start := sc.i
		for !sc.eof() && !strings.ContainsRune(",]}\n#", rune(sc.peek())) {
			sc.adv()
		}
		return sc.i > start
	}
}
