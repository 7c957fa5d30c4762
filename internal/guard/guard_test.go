package guard_test

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/lockbox-dev/lockbox"

type pkg struct {
	ImportPath string
	Dir        string
	Deps       []string
	GoFiles    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// domain packages hold the rules; they must not know about HTTP, SQL drivers,
// the store or the API.
var domain = []string{"authz", "audit", "identity", "project", "secret", "dynamic", "keyring", "errs", "config", "events", "kms", "appconn", "rotation", "sshca", "org", "pki"}

// forbiddenForDomain are import paths (and everything below them) that domain
// packages must not depend on. database/sql itself is checked exactly:
// database/sql/driver is interfaces only and arrives with github.com/google/uuid.
var forbiddenForDomain = []string{
	"net/http",
	"github.com/jackc/pgx",
	"modernc.org/sqlite",
	module + "/internal/api",
	module + "/internal/store",
	module + "/internal/app",
}

func TestDomainPackagesStayPure(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/internal/")
		top := strings.Split(rel, "/")[0]
		isDomain := false
		for _, d := range domain {
			if top == d && !strings.Contains(rel, "/provider/") && rel != "appconn/target" {
				isDomain = true
			}
		}
		if !isDomain {
			continue
		}
		for _, dep := range p.Deps {
			if dep == "database/sql" {
				t.Errorf("%s imports database/sql (domain packages must not)", p.ImportPath)
			}
			for _, bad := range forbiddenForDomain {
				if dep == bad || strings.HasPrefix(dep, bad+"/") {
					t.Errorf("%s imports %s (domain packages must not)", p.ImportPath, dep)
				}
			}
		}
	}
}

func TestErrsIsALeaf(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/internal/errs" {
			continue
		}
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, module) {
				t.Errorf("errs imports %s", dep)
			}
		}
	}
}

func TestAPIDoesNotReachTheStore(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/internal/api" {
			continue
		}
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, module+"/internal/store") || strings.HasPrefix(dep, "github.com/jackc/pgx") || strings.HasPrefix(dep, "modernc.org/sqlite") {
				t.Errorf("api imports %s: it gets domain services, never the store", dep)
			}
		}
	}
}

func TestEveryPackageHasOnePackageComment(t *testing.T) {
	for _, p := range listPackages(t) {
		docs := 0
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if file.Doc != nil && strings.HasPrefix(file.Doc.Text(), "Package "+file.Name.Name+" ") ||
				file.Doc != nil && file.Name.Name == "main" && strings.HasPrefix(file.Doc.Text(), "Command ") {
				docs++
			}
		}
		if docs != 1 {
			t.Errorf("%s has %d package comments, want 1", p.ImportPath, docs)
		}
	}
}
