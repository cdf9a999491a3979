package protocol_test

import (
	"go/build"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestImportsNoEtcd keeps the package what its doc says: the standard
// library and package auth only (whose own imports are etcd-free by
// DESIGN §2), so that importing it never pulls in etcd.
func TestImportsNoEtcd(t *testing.T) {
	p, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"github.com/zccadapter/zccadapter/auth": true}
	for _, imp := range p.Imports {
		std := !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")
		if !std && !allowed[imp] {
			t.Errorf("protocol imports %s; it may import only the standard library and auth", imp)
		}
	}
}
