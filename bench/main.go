package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zccadapter/zccadapter/bench/kit"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	drills  int
	ttl     time.Duration
	filter  string
	count   int
	raw     string
	profile string
	verbose bool
}

func run() error {
	var o options
	flag.IntVar(&o.drills, "drills", 5, "crash (SIGKILL) and graceful (SIGTERM) failovers to drill, each")
	flag.DurationVar(&o.ttl, "ttl", 5*time.Second, "session TTL of the drilled nodes")
	flag.StringVar(&o.filter, "bench", ".", "run only the benchmarks matching this regexp (go test -bench)")
	flag.IntVar(&o.count, "count", 1, "run each benchmark this many times (go test -count; the table shows medians)")
	flag.StringVar(&o.raw, "raw", "", "write the raw go test output here (default: a file in the temp directory)")
	flag.StringVar(&o.profile, "profile", "", "write CPU profiles of the measured windows of the in-process benchmarks into this directory")
	flag.BoolVar(&o.verbose, "v", false, "show the benchmarks' log lines and the drill's progress")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	m := describeMachine(ctx)
	fmt.Printf("zccadapter benchmarks, %s\n", started.Format("2006-01-02 15:04 MST"))
	fmt.Printf("machine: %s\n", m)
	cpu0 := readCPU()
	if load := loadAverage(); load > 1.5 {
		fmt.Printf("WARNING: load average %.2f at the start: other processes may be using the CPU (see the share printed at the end)\n", load)
	}

	work, err := os.MkdirTemp("", "zccadapter-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if o.raw == "" {
		o.raw = filepath.Join(os.TempDir(), "zccadapter-bench-"+started.Format("20060102-150405")+".txt")
	}
	rawFile, err := os.Create(o.raw)
	if err != nil {
		return err
	}
	defer rawFile.Close()

	step(started, "building bin/zccadapter for the process-level benchmarks")
	bin := filepath.Join(work, "zccadapter")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/zccadapter")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}

	env := append(os.Environ(),
		"ZCC_BENCH_BIN="+bin,
		"ZCC_BENCH_DRILLS="+strconv.Itoa(o.drills),
		"ZCC_BENCH_TTL="+o.ttl.String())
	if o.profile != "" {
		abs, err := filepath.Abs(o.profile)
		if err != nil {
			return err
		}
		env = append(env, "ZCC_BENCH_PROFILE="+abs)
	}
	if o.verbose {
		env = append(env, "ZCC_BENCH_VERBOSE=1")
	}
	res := results{}
	var failed []string
	for _, pkg := range []struct{ path, benchtime string }{
		// Parse and DedupKey are ordinary microbenchmarks; the others are
		// experiments of fixed length, run once each.
		{"./events", "1s"}, {"./adapter", "1x"}, {"./bench", "1x"},
	} {
		step(started, "go test -bench %s -benchtime %s %s", o.filter, pkg.benchtime, pkg.path)
		args := []string{"test", "-run", "^$", "-bench", o.filter, "-benchtime", pkg.benchtime, "-count", strconv.Itoa(o.count), "-timeout", "60m"}
		if o.verbose {
			args = append(args, "-v")
		}
		cmd := exec.CommandContext(ctx, "go", append(args, pkg.path)...)
		cmd.Dir, cmd.Env = root, env
		f, err := runStreaming(cmd, rawFile, started, o.verbose, res)
		failed = append(failed, f...)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", pkg.path, err))
		}
	}
	printTables(os.Stdout, res, o)
	if other := cpu0.otherShare(readCPU()); other >= 0 {
		fmt.Printf("\nCPU used by other processes during the run: %.0f%% of the machine", 100*other)
		if other > 0.05 {
			fmt.Print(" (WARNING: the figures are not of a quiet machine)")
		}
		fmt.Println()
	}
	fmt.Printf("\nraw go test output (for benchstat): %s\n", o.raw)
	fmt.Printf("total time: %s\n", time.Since(started).Round(time.Second))
	if len(failed) > 0 {
		return fmt.Errorf("some benchmarks failed:\n  %s", strings.Join(failed, "\n  "))
	}
	return nil
}

func step(started time.Time, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run this from the zccadapter module: go run ./bench")
	}
	return filepath.Dir(mod), nil
}

// results holds every metric of every benchmark run: name (without the
// GOMAXPROCS suffix) → unit → values.
type results map[string]map[string][]float64

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parse reads one benchmark result line; false if it is not one.
func (r results) parse(line string) (string, bool) {
	if !strings.HasPrefix(line, "Benchmark") || !strings.Contains(line, "\t") {
		return "", false
	}
	fields := strings.Split(line, "\t")
	name := procsSuffix.ReplaceAllString(strings.TrimSpace(fields[0]), "")
	if len(fields) < 3 {
		return "", false
	}
	if r[name] == nil {
		r[name] = map[string][]float64{}
	}
	for _, f := range fields[2:] {
		vu := strings.Fields(f)
		if len(vu) != 2 {
			continue
		}
		if v, err := strconv.ParseFloat(vu[0], 64); err == nil {
			r[name][vu[1]] = append(r[name][vu[1]], v)
		}
	}
	return name, true
}

// get is the median of a metric, and whether it was measured.
func (r results) get(name, unit string) (float64, bool) {
	vs := r[name][unit]
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2], true
}

// runStreaming runs a go test command, copies its output to raw, shows
// progress lines as they come, and collects results and failures.
func runStreaming(cmd *exec.Cmd, raw io.Writer, started time.Time, verbose bool, res results) ([]string, error) {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	waitErr := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.CloseWithError(io.EOF)
		waitErr <- err
	}()
	var failed []string
	inFail := false
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(raw, line)
		switch {
		case strings.HasPrefix(line, "    … "):
			fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), strings.TrimPrefix(line, "    … "))
		case strings.HasPrefix(line, "--- FAIL"):
			inFail = true
			failed = append(failed, strings.TrimSpace(strings.TrimPrefix(line, "--- FAIL:")))
			fmt.Fprintln(os.Stderr, line)
		case strings.HasPrefix(line, "--- "):
			inFail = false
			if verbose {
				fmt.Fprintln(os.Stderr, line)
			}
		case strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "FAIL"):
			fmt.Fprintln(os.Stderr, line)
		default:
			if name, ok := res.parse(line); ok {
				fmt.Fprintf(os.Stderr, "[%6.1fs] done: %s\n", time.Since(started).Seconds(), name)
			} else if inFail || verbose {
				fmt.Fprintln(os.Stderr, line)
			}
		}
	}
	return failed, <-waitErr
}

// describeMachine says what the numbers were measured on: CPU, cores,
// memory, kernel, Go, and the fsync latency of the temp directory's disk
// (etcd waits for one per commit).
func describeMachine(ctx context.Context) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				if kb, err := strconv.ParseFloat(strings.Fields(l)[1], 64); err == nil {
					mem = fmt.Sprintf(", %.0f GiB RAM", kb/(1<<20))
				}
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	gov, _ := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	return fmt.Sprintf("%s, %d cores%s%s, %s, fsync of 4 KiB %s", cpu, runtime.NumCPU(), mem, kernel,
		strings.TrimSpace(string(gov)), fsyncLatency())
}

// fsyncLatency times 200 writes of 4 KiB, each followed by fsync.
func fsyncLatency() string {
	f, err := os.CreateTemp("", "zccadapter-fsync-")
	if err != nil {
		return "unknown"
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var ds []time.Duration
	for i := 0; i < 200; i++ {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			return "unknown"
		}
		if err := f.Sync(); err != nil {
			return "unknown"
		}
		ds = append(ds, time.Since(t))
	}
	d := kit.NewDist(ds)
	return fmt.Sprintf("p50 %.2f ms, p99 %.2f ms", kit.MS(d.Q(.5)), kit.MS(d.Q(.99)))
}

// cpuSample is the machine's busy and total CPU time (from /proc/stat) and
// the CPU time of this process and its waited-for descendants.
type cpuSample struct {
	busy, total, ours float64 // seconds
	ok                bool
}

func readCPU() cpuSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return cpuSample{}
	}
	var s cpuSample
	for i, v := range f[1:] {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return cpuSample{} // not the format we know: the share is unknown
		}
		x /= 100 // USER_HZ
		s.total += x
		if i != 3 && i != 4 { // idle, iowait
			s.busy += x
		}
	}
	var self, kids syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) == nil && syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids) == nil {
		tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
		s.ours = tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
		s.ok = true
	}
	return s
}

// otherShare is the share of the machine's CPU that processes other than
// this run used between s and e; -1 if unknown.
func (s cpuSample) otherShare(e cpuSample) float64 {
	if !s.ok || !e.ok || e.total <= s.total {
		return -1
	}
	other := (e.busy - s.busy) - (e.ours - s.ours)
	return max(other, 0) / (e.total - s.total)
}

// loadAverage is the 1-minute load average (0 if unknown).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return v
}
