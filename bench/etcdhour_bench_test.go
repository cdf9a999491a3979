package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/bench/kit"
	"github.com/zccadapter/zccadapter/cluster"
)

// hourOps returns the leader writes of the corpus: its roster, then its
// calls.
func hourOps(b *testing.B, c *kit.Corpus) []kit.LeaderWrite {
	b.Helper()
	ops, err := kit.LeaderWrites(c.Roster, c.Calls)
	if err != nil {
		b.Fatal(err)
	}
	return ops
}

// BenchmarkEtcdHour simulates one hour (ZCC_BENCH_SIM_HOUR) of a leader's
// etcd writes at 200 events/s, faster than real time, on an embedded etcd
// member started as a node starts its own (cluster.StartEmbedded, with its
// own real-time compaction off: compaction is emulated in simulated time
// below), and reports the database size.
//
// How the hour is simulated: the events are those of recorded traffic
// (2,000 calls, cycled with new engagement ids and dedup keys), each
// written as the leader writes it — its engagement's state record (JSON of
// adapter.Engagement after the rules applied the event; with the dedup
// lease once the engagement is closed) and its dedup key (with the dedup
// lease) under the leader's key layout (cluster.Keys) — in event order, as
// fast as etcd takes them (up to 40 events per txn, no two puts of one key
// in a txn). Time is simulated: event i happens at i/200 s. Dedup leases
// follow those of cluster.Term.CommitBatch in simulated time: a new lease
// every quarter of the 20-minute dedup window, and instead of waiting for a
// lease to expire, the simulation revokes it when its simulated TTL ends
// (etcd's expiry is a revoke: the same deletions and history). Handoff
// deletions of keys that do not exist, health and membership records are
// left out (they store nothing or next to nothing).
//
// Two runs: compaction=none (etcd's default, the reference: what an
// external etcd cluster does unless configured) and compaction=periodic-5m
// (what the embedded member and the compose lab run, and what the README
// asks of external clusters: --auto-compaction-mode=periodic
// --auto-compaction-retention=5m, emulated in simulated time: every 5
// minutes, compact to the revision of 5 minutes before). Reported at the
// end of the hour: the database file size, the size in use, the in-use
// growth over the second half hour (MB per hour: 0 means bounded), and the
// live keys.
func BenchmarkEtcdHour(b *testing.B) {
	if testing.Short() {
		b.Skip("long benchmark: skipped with -short")
	}
	hour := envDuration("ZCC_BENCH_SIM_HOUR", time.Hour)
	corpus, err := kit.Record(context.Background(), kit.CorpusConfig{Seed: time.Now().UnixNano(), Calls: 2000, Agents: 1500})
	if err != nil {
		b.Fatal(err)
	}
	ops := hourOps(b, corpus)
	modes := []struct {
		name      string
		retention time.Duration
	}{{"none", 0}, {"periodic-5m", 5 * time.Minute}}
	// The two runs go side by side, each on its own etcd member: together
	// they keep both cores busy, one alone does not.
	results := make([]hourResult, len(modes))
	var wg sync.WaitGroup
	for i, m := range modes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = simulateHour(b.TempDir(), ops, hour, m.retention)
		}()
	}
	wg.Wait()
	for i, m := range modes {
		b.Run("compaction="+m.name, func(b *testing.B) {
			r := results[i]
			if r.err != nil {
				b.Fatal(r.err)
			}
			for _, s := range r.samples {
				b.Logf("%s", s)
			}
			const mb = 1 << 20
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(r.db)/mb, "db-MB")
			b.ReportMetric(float64(r.inUse)/mb, "inuse-MB")
			b.ReportMetric(float64(r.inUseHalf)/mb, "inuse-half-MB")
			b.ReportMetric(float64(r.inUse-r.inUseHalf)/mb/(hour/2).Hours(), "growth-MB/h")
			b.ReportMetric(float64(r.keys), "live-keys")
			b.ReportMetric(hour.Seconds()/r.took.Seconds(), "speedup")
			b.Logf("%d events (%s at 200/s) in %s: %.0f× real time", r.events, hour, r.took.Round(time.Millisecond), hour.Seconds()/r.took.Seconds())
		})
	}
}

// hourResult is what one simulated hour measured.
type hourResult struct {
	db, inUse, inUseHalf, keys int64
	events                     int
	took                       time.Duration
	samples                    []string
	err                        error
}

func simulateHour(dir string, ops []kit.LeaderWrite, hour, retention time.Duration) (res hourResult) {
	const rate = 200  // events per simulated second
	const chunk = 400 // events per round of txns: 2 simulated seconds
	window := 20 * time.Minute
	ctx := context.Background()
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: dir, AutoCompactionRetention: -1})
	if err != nil {
		return hourResult{err: err}
	}
	defer e.Close()
	cl, err := cluster.Connect(ctx, cluster.Config{Endpoints: e.Endpoints(), Cluster: "hour", Node: "a"}, zerolog.Nop())
	if err != nil {
		return hourResult{err: err}
	}
	defer cl.Close()
	cli, k := cl.Client(), cl.Keys()
	ep := e.Endpoints()[0]

	type lease struct {
		id     clientv3.LeaseID
		endSim time.Duration
	}
	var (
		leases     []lease
		cur        lease
		curAt      = time.Duration(-1)
		rev        int64
		revAt      = map[int64]int64{} // simulated minute → revision at its start
		minuteSeen = map[int64]bool{}
		lastComp   time.Duration
	)
	grant := func(sim time.Duration) error {
		// A long real TTL: the simulation revokes it at its simulated end.
		g, err := cli.Grant(ctx, int64((2 * time.Hour).Seconds()))
		if err != nil {
			return err
		}
		cur, curAt = lease{g.ID, sim + window}, sim
		leases = append(leases, cur)
		return nil
	}
	sample := func(sim time.Duration) error {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			return err
		}
		n, err := cli.Get(ctx, k.Root(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		res.db, res.inUse, res.keys = st.DbSize, st.DbSizeInUse, n.Count
		if sim == hour/2 {
			res.inUseHalf = st.DbSizeInUse
		}
		res.samples = append(res.samples, fmt.Sprintf("%s: db %.1f MB, in use %.1f MB, %d live keys",
			sim, float64(st.DbSize)/(1<<20), float64(st.DbSizeInUse)/(1<<20), n.Count))
		return nil
	}
	fail := func(err error) hourResult {
		res.err = err
		return res
	}
	total := int(hour.Seconds() * rate)
	start := time.Now()
	for i := 0; i < total; {
		sim := time.Duration(float64(i) / rate * float64(time.Second))
		if curAt < 0 || sim-curAt >= window/4 {
			if err := grant(sim); err != nil {
				return fail(err)
			}
		}
		for len(leases) > 0 && sim >= leases[0].endSim {
			if _, err := cli.Revoke(ctx, leases[0].id); err != nil {
				return fail(err)
			}
			leases = leases[1:]
		}
		if m := int64(sim / time.Minute); !minuteSeen[m] {
			minuteSeen[m] = true
			revAt[m] = rev
			if m > 0 && m%10 == 0 {
				if err := sample(time.Duration(m) * time.Minute); err != nil {
					return fail(err)
				}
			}
		}
		if retention > 0 && sim-lastComp >= retention {
			lastComp = sim
			if r := revAt[int64((sim-retention)/time.Minute)]; r > 0 {
				// Compactions run in the background, as etcd's own
				// do, except the one half-way between two samples,
				// which the simulation waits for: every sample then
				// sees the database at the same phase.
				var opts []clientv3.CompactOption
				if sim%(10*time.Minute) == 5*time.Minute {
					opts = append(opts, clientv3.WithCompactPhysical())
				}
				if _, err := cli.Compact(ctx, r, opts...); err != nil {
					return fail(err)
				}
			}
		}
		// The next chunk of events, as txns of at most 120 ops with no key
		// twice in one txn: each state put goes in the round of its
		// engagement's occurrence in the chunk, so puts of one key keep
		// their order.
		n := min(chunk, total-i)
		var rounds [][]clientv3.Op
		occ := map[string]int{}
		for j := i; j < i+n; j++ {
			cycle := j / len(ops)
			o := ops[j%len(ops)]
			sfx := ""
			if cycle > 0 {
				sfx = fmt.Sprintf("~%d", cycle)
			}
			if len(rounds) == 0 {
				rounds = append(rounds, nil)
			}
			rounds[0] = append(rounds[0], clientv3.OpPut(k.Dedup(o.Key+sfx), "a", clientv3.WithLease(cur.id)))
			if o.State == "" {
				continue
			}
			eng := o.Eng + sfx
			r := occ[eng]
			occ[eng]++
			state := o.State
			if sfx != "" {
				state = strings.ReplaceAll(state, o.Eng, eng)
			}
			for len(rounds) <= r {
				rounds = append(rounds, nil)
			}
			if o.Closed {
				rounds[r] = append(rounds[r], clientv3.OpPut(k.State(eng), state, clientv3.WithLease(cur.id)))
			} else {
				rounds[r] = append(rounds[r], clientv3.OpPut(k.State(eng), state))
			}
		}
		for _, round := range rounds {
			for len(round) > 0 {
				m := min(len(round), 120)
				resp, err := cli.Txn(ctx).Then(round[:m]...).Commit()
				if err != nil {
					return fail(err)
				}
				rev = resp.Header.Revision
				round = round[m:]
			}
		}
		i += n
	}
	// The end of the hour at the same phase as the samples: the leases due
	// revoked, no compaction after them.
	for len(leases) > 0 && hour >= leases[0].endSim {
		if _, err := cli.Revoke(ctx, leases[0].id); err != nil {
			return fail(err)
		}
		leases = leases[1:]
	}
	if err := sample(hour); err != nil {
		return fail(err)
	}
	res.events, res.took = total, time.Since(start)
	return res
}
