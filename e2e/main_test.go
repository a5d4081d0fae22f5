package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// bins holds the paths of the binaries TestMain built.
var bins struct {
	dir        string
	nodalmerge string
	grpcurl    string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "nodalmerge-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bins.dir = dir
	bins.nodalmerge = filepath.Join(dir, "nodalmerge")
	bins.grpcurl = filepath.Join(dir, "grpcurl")
	args := []string{"build", "-o", bins.nodalmerge}
	if raceEnabled {
		args = append(args, "-race")
	}
	builds := [][]string{
		append(args, "./cmd/nodalmerge"),
		// grpcurl is pinned in the tools module, so the tests use the real
		// operator tool at a known version, fetched from the module proxy.
		{"build", "-modfile=tools/go.mod", "-o", bins.grpcurl, "github.com/fullstorydev/grpcurl/cmd/grpcurl"},
	}
	for _, b := range builds {
		cmd := exec.Command("go", b...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(b, " "), err, out)
			return 1
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: leaked goroutines:", err)
			return 1
		}
	}
	return code
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(mod), nil
}
