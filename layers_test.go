package kazasu_test

// The layering rule of kazasu, as a test (tailscale deptest style): each
// package has a rank, and a package may import only packages of equal or
// lower rank. Test files are exempt (an end-to-end test may wire anything).
//
//	daemon (session, validation, relay, API)    90
//	card application drivers/jpki               70
//	APDU drivers/apdu                           60
//	reader wiring drivers/reader (opens URIs)   50
//	ISO-DEP drivers/isodep                      40
//	activation drivers/iso14443                 30
//	chip drivers/pn532, drivers/libnfc          20
//	transport drivers/serial                    10
//	trace writer drivers/trace                   1
//	contract drivers/nfc                         0 (importable by all)
//
// Virtual hardware (drivers/sim/...) is outside the stack: it may use the
// protocol codecs below ISO-DEP and the contract, and only drivers/reader,
// the daemon, tools and firmware may import it. boards/ holds typed data and
// imports nothing from the stack.

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "kazasu"

// rank returns the layer rank of a package directory (slash path relative to
// the module root), longest prefix first.
func rank(dir string) (int, bool) {
	table := []struct {
		prefix string
		rank   int
	}{
		{"drivers/nfc", 0},
		{"drivers/trace", 1},
		{"drivers/serial", 10},
		{"drivers/pn532", 20},
		{"drivers/libnfc", 20},
		{"drivers/iso14443", 30},
		{"drivers/isodep", 40},
		{"drivers/sim", 45},
		{"drivers/reader", 50},
		{"drivers/apdu", 60},
		{"drivers/jpki", 70},
		{"boards", 5},
		{"daemon", 90},
		{"firmware", 95},
		{"tools", 100},
	}
	best, bestLen := 0, -1
	for _, e := range table {
		if (dir == e.prefix || strings.HasPrefix(dir, e.prefix+"/")) && len(e.prefix) > bestLen {
			best, bestLen = e.rank, len(e.prefix)
		}
	}
	return best, bestLen >= 0
}

// simAllowed lists who may import virtual hardware.
func simAllowed(importer string) bool {
	for _, p := range []string{"drivers/sim", "drivers/reader", "daemon", "tools", "firmware"} {
		if importer == p || strings.HasPrefix(importer, p+"/") {
			return true
		}
	}
	return false
}

func TestLayering(t *testing.T) {
	imports := map[string]map[string]bool{} // dir -> internal imports
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if !strings.HasPrefix(p, module+"/") {
				continue
			}
			if imports[dir] == nil {
				imports[dir] = map[string]bool{}
			}
			imports[dir][strings.TrimPrefix(p, module+"/")] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for d := range imports {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		rd, ok := rank(dir)
		if !ok {
			t.Errorf("%s: package has no layer rank; add it to the table in layers_test.go", dir)
			continue
		}
		for imp := range imports[dir] {
			ri, ok := rank(imp)
			if !ok {
				t.Errorf("%s imports %s, which has no layer rank", dir, imp)
				continue
			}
			if strings.HasPrefix(imp, "drivers/sim") && !simAllowed(dir) {
				t.Errorf("%s imports virtual hardware %s; only drivers/reader, daemon, tools and firmware may", dir, imp)
			}
			if ri > rd {
				t.Errorf("%s (rank %d) imports %s (rank %d): imports must point down the stack", dir, rd, imp, ri)
			}
		}
	}
}

func TestRankTable(t *testing.T) {
	// The table itself: a few fixed points, so an edit that breaks the
	// stack's order fails here.
	order := []string{"drivers/nfc", "drivers/serial", "drivers/pn532", "drivers/iso14443", "drivers/isodep", "drivers/reader", "drivers/apdu", "drivers/jpki", "daemon"}
	prev := -1
	for _, p := range order {
		r, ok := rank(p)
		if !ok || r <= prev {
			t.Fatalf("rank(%s) = %d, %v: stack order broken", p, r, ok)
		}
		prev = r
	}
	if simAllowed("drivers/jpki") || simAllowed("drivers/pn532") {
		t.Fatal("stack packages must not be allowed to import virtual hardware")
	}
}
