package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/zccadapter/zccadapter/wait"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/bench/kit"
	"github.com/zccadapter/zccadapter/deploy/drill"
)

// openState picks, from a recorded corpus, the agents' roster events and,
// for the first engs engagements, their events up to the agent's answer:
// engagements left open with one recording each. Leg-ending events and
// everything after them are left out.
func openState(c *kit.Corpus, engs int) (evs []kit.Event, open int) {
	evs = append(evs, c.Roster...)
	state := map[string]int{} // 1 open, 2 answered or ended: no more events
	for _, e := range c.Calls {
		st, seen := state[e.EngagementID]
		if !seen {
			if len(state) >= engs {
				continue
			}
			state[e.EngagementID] = 1
		}
		if st == 2 {
			continue
		}
		name := strings.TrimPrefix(e.Name, "contact_center.")
		switch name {
		case "engagement_user_ended", "engagement_consumer_ended", "engagement_ended":
			state[e.EngagementID] = 2
			continue
		case "engagement_user_answered", "engagement_consumer_answered":
			state[e.EngagementID] = 2
		}
		evs = append(evs, e)
	}
	return evs, len(state)
}

// footprintEtcd is the etcd the local drill backend started, reached
// through node a's proxy (its address is in node a's config).
func footprintEtcd(b *testing.B, dir string) (*clientv3.Client, string) {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "node-a.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	var cfg struct {
		Etcd struct {
			Endpoints []string `yaml:"endpoints"`
		} `yaml:"etcd"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil || len(cfg.Etcd.Endpoints) == 0 {
		b.Fatalf("node-a.yaml: no etcd endpoint (%v)", err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Etcd.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	return cli, cfg.Etcd.Endpoints[0]
}

type etcdSize struct{ db, inUse int64 }

func statusOf(b *testing.B, cli *clientv3.Client, ep string) etcdSize {
	b.Helper()
	st, err := cli.Status(context.Background(), ep)
	if err != nil {
		b.Fatal(err)
	}
	return etcdSize{st.DbSize, st.DbSizeInUse}
}

func nodeStatus(ctx context.Context, url string) (adapter.NodeStatus, error) {
	var s adapter.NodeStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/status", nil)
	if err != nil {
		return s, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// BenchmarkFootprint runs a pair as OS processes (the drill's local
// backend: one etcd member, the simulated Zoom, the recorder, nodes a and
// b), brings it to ZCC_BENCH_AGENTS (default 2,000) logged-in agents and
// ZCC_BENCH_ENGAGEMENTS (default 5,000) open engagements, each with an open
// recording, by publishing recorded traffic model events through the
// simulated Zoom at 1,200 events/s (under the leader's capacity, so that
// the figures are of the steady state, not of a backlog), waits until both nodes have applied or
// mirrored every event, and reads each process's resident set
// (process_resident_memory_bytes of its /metrics) and etcd's database size.
//
// Reported: RSS of the leader, the standby and etcd in MB, the leader's Go
// heap in use, and etcd bytes per event: growth of the database in use
// (MVCC history included, no compaction) and the live key-value bytes of the
// cluster's keys, each divided by the events applied.
func BenchmarkFootprint(b *testing.B) {
	if testing.Short() {
		b.Skip("long benchmark: skipped with -short")
	}
	agents := envInt("ZCC_BENCH_AGENTS", 2000)
	engs := envInt("ZCC_BENCH_ENGAGEMENTS", 5000)
	const rate = 1200
	bin := benchBinary(b)
	ctx := context.Background()
	corpus, err := kit.Record(ctx, kit.CorpusConfig{Seed: time.Now().UnixNano(), Calls: engs, Agents: agents})
	if err != nil {
		b.Fatal(err)
	}
	evs, open := openState(corpus, engs)
	progress("footprint: %d agents, %d open engagements: %d events at %d/s", agents, open, len(evs), rate)

	sc, err := drill.ParseScenario("bench-footprint", []byte("name: bench-footprint\npause_on_hold: false\n"))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	local := drill.NewLocal(bin, dir, sc)
	b.Cleanup(local.Shutdown)
	if err := local.Start(ctx); err != nil {
		b.Fatalf("start: %v (logs in %s)", err, local.Logs())
	}
	roles := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for len(roles) < 2 {
		if time.Now().After(deadline) {
			b.Fatalf("nodes not ready after 30s: %v; logs in %s", roles, local.Logs())
		}
		for _, n := range []string{"a", "b"} {
			if s, err := nodeStatus(ctx, local.NodeURL(n)); err == nil && s.SocketUp &&
				(s.Role == adapter.RoleLeader || s.Role == adapter.RoleStandby) {
				roles[s.Role] = n
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	leader, standby := roles[adapter.RoleLeader], roles[adapter.RoleStandby]
	cli, ep := footprintEtcd(b, dir)
	before := statusOf(b, cli, ep)
	idle := map[string]float64{}
	for role, n := range roles {
		m, err := kit.Scrape(ctx, local.NodeURL(n)+"/metrics")
		if err != nil {
			b.Fatal(err)
		}
		idle[role] = m["process_resident_memory_bytes"]
	}

	// Three publishers, each at a third of the rate; an agent's roster
	// events (four in a row) and an engagement's events stay with one
	// publisher, in order.
	const workers = 3
	shards := make([][]kit.Event, workers)
	for i, e := range evs {
		w := (i / 4) % workers
		if e.EngagementID != "" {
			w = int(fnv32(e.EngagementID) % workers)
		}
		shards[w] = append(shards[w], e)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	// The events each node holds that the leader's log does not show yet:
	// their peak says whether the load-in outran the leader.
	var peakLeader, peakStandby atomic.Int64
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for sctx.Err() == nil {
			if s, err := nodeStatus(sctx, local.NodeURL(leader)); err == nil && int64(s.Pending+s.Parked) > peakLeader.Load() {
				peakLeader.Store(int64(s.Pending + s.Parked))
			}
			if s, err := nodeStatus(sctx, local.NodeURL(standby)); err == nil && int64(s.Pending) > peakStandby.Load() {
				peakStandby.Store(int64(s.Pending))
			}
			wait.Sleep(sctx, 100*time.Millisecond) //nolint:errcheck // the loop checks sctx
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	var postErr atomic.Value
	for _, shard := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kit.Pace(ctx, len(shard), rate/workers, func(i int) {
				body, _ := json.Marshal(map[string]json.RawMessage{"event": shard[i].Raw})
				resp, err := hc.Post(local.ZoomURL()+"/sim/events", "application/json", bytes.NewReader(body))
				if err != nil {
					postErr.Store(err)
					return
				}
				resp.Body.Close()
			})
		}()
	}
	wg.Wait()
	if err, ok := postErr.Load().(error); ok {
		b.Fatal(err)
	}
	progress("footprint: %d events published in %s; waiting for both nodes", len(evs), time.Since(start).Round(time.Millisecond))
	var sl, ss adapter.NodeStatus
	deadline = time.Now().Add(90 * time.Second)
	for {
		sl, _ = nodeStatus(ctx, local.NodeURL(leader))
		ss, _ = nodeStatus(ctx, local.NodeURL(standby))
		if sl.Pending == 0 && ss.Pending == 0 && ss.MirrorStates >= open && sl.Role == adapter.RoleLeader {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not settled after 90s: leader %+v; standby %+v", sl, ss)
		}
		time.Sleep(200 * time.Millisecond)
	}
	settled := time.Since(start)
	stopSampling()
	<-sampled
	time.Sleep(3 * time.Second) // let the heap settle after the burst
	after := statusOf(b, cli, ep)
	mem := map[string]map[string]float64{}
	for name, url := range map[string]string{"leader": local.NodeURL(leader), "standby": local.NodeURL(standby), "etcd": "http://" + ep} {
		m, err := kit.Scrape(ctx, url+"/metrics")
		if err != nil {
			b.Fatal(err)
		}
		mem[name] = m
	}
	// Live bytes of the cluster's keys (the pair's records only).
	var live, stateBytes, states int64
	resp, err := cli.Get(ctx, "/zccadapter/", clientv3.WithPrefix())
	if err != nil {
		b.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		live += int64(len(kv.Key) + len(kv.Value))
		if strings.Contains(string(kv.Key), "/state/") {
			stateBytes += int64(len(kv.Key) + len(kv.Value))
			states++
		}
	}
	applied := float64(sl.Applied)
	const mb = 1 << 20
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(mem["leader"]["process_resident_memory_bytes"]/mb, "rss-leader-MB")
	b.ReportMetric(mem["standby"]["process_resident_memory_bytes"]/mb, "rss-standby-MB")
	b.ReportMetric(mem["etcd"]["process_resident_memory_bytes"]/mb, "rss-etcd-MB")
	b.ReportMetric(idle[adapter.RoleLeader]/mb, "rss-leader-idle-MB")
	b.ReportMetric(idle[adapter.RoleStandby]/mb, "rss-standby-idle-MB")
	b.ReportMetric(mem["leader"]["go_memstats_heap_inuse_bytes"]/mb, "heap-leader-MB")
	b.ReportMetric(mem["standby"]["go_memstats_heap_inuse_bytes"]/mb, "heap-standby-MB")
	b.ReportMetric(float64(after.inUse-before.inUse)/applied, "etcd-inuse-B/event")
	b.ReportMetric(float64(live)/applied, "etcd-live-B/event")
	b.ReportMetric(float64(stateBytes)/float64(max(states, 1)), "state-B/engagement")
	b.ReportMetric(float64(after.db)/mb, "etcd-db-MB")
	b.ReportMetric(applied, "events")
	b.ReportMetric(float64(peakLeader.Load()), "peak-pending-leader")
	b.ReportMetric(float64(peakStandby.Load()), "peak-pending-standby")
	b.ReportMetric(float64(states), "engagements")
	b.ReportMetric(float64(agents), "agents")
	b.Logf("settled %s after the first event; leader applied %d events, sent %d commands and %d agent updates; standby mirrors %d keys, %d engagements",
		settled.Round(time.Millisecond), sl.Applied, sl.Commands, sl.AgentUpdates, ss.MirrorApplied, ss.MirrorStates)
	b.Logf("etcd: db %d → %d bytes, in use %d → %d; live %d bytes in %d keys (%d state records, %d bytes)",
		before.db, after.db, before.inUse, after.inUse, live, len(resp.Kvs), states, stateBytes)
	b.Logf("handed off by the standby: %d", ss.HandedOff)
}

// fnv32 is the FNV-1a hash of s.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}
