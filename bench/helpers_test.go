package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// benchBinary returns the zccadapter executable the process-level
// benchmarks run: $ZCC_BENCH_BIN (the runner builds it once), else one built
// now from this module.
func benchBinary(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("ZCC_BENCH_BIN"); p != "" {
		return p
	}
	builtBin.Do(func() {
		dir, err := os.MkdirTemp("", "zccadapter-bench-bin-")
		if err != nil {
			builtErr = err
			return
		}
		builtPath = filepath.Join(dir, "zccadapter")
		out, err := exec.Command("go", "build", "-o", builtPath, "github.com/zccadapter/zccadapter/cmd/zccadapter").CombinedOutput()
		if err != nil {
			builtErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if builtErr != nil {
		b.Fatal(builtErr)
	}
	return builtPath
}

var (
	builtBin  sync.Once
	builtPath string
	builtErr  error
)

// envInt reads an integer from the environment (default def).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// envDuration reads a duration from the environment (default def).
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// progress prints a progress line on stderr: these benchmarks run for
// minutes, and the runner shows the lines as they come.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "    … "+format+"\n", args...)
}
