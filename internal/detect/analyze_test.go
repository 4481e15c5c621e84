package detect

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/mysql"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ok(d time.Duration) ProbeResult {
	return ProbeResult{At: at(d), OK: true, Latency: time.Millisecond}
}

func refused(d time.Duration) ProbeResult {
	return ProbeResult{At: at(d), Err: "dial tcp 198.18.0.11:3306: connect: connection refused"}
}

func timedOut(d time.Duration) ProbeResult {
	return ProbeResult{At: at(d), Err: "context deadline exceeded", Timeout: true, Latency: time.Second}
}

func alive(d time.Duration, msg string) ProbeResult {
	return ProbeResult{At: at(d), Err: msg, AliveError: true}
}

// connecting is a replica whose IO thread lost the primary after kill -9.
func connecting(name string, errno int) ReplicaView {
	return ReplicaView{Server: name, Reachable: true, Replicating: true, IORunning: mysql.IOConnecting,
		LastIOErrno: errno, LastIOError: "error reconnecting to master", LastEventAge: 2 * time.Second,
		HeartbeatPeriod: time.Second}
}

// yes is a replica whose IO thread is connected, last heard age ago.
func yes(name string, age time.Duration, moved bool) ReplicaView {
	return ReplicaView{Server: name, Reachable: true, Replicating: true, IORunning: mysql.IOYes,
		LastEventAge: age, ReadPosMoved: moved, HeartbeatPeriod: time.Second}
}

func unreachable(name string) ReplicaView {
	return ReplicaView{Server: name, Err: "dial tcp: i/o timeout", LastEventAge: -1}
}

func code(c int) *int { return &c }

func with(v ReplicaView, f func(*ReplicaView)) ReplicaView { f(&v); return v }

func TestAnalyze(t *testing.T) {
	suspect1 := Verdict{Kind: Suspect, Since: at(0)}
	suspect4 := Verdict{Kind: Suspect, Since: at(4 * time.Second)}
	tests := []struct {
		name   string
		prev   Verdict
		obs    Observation
		policy Policy
		want   Kind
		reason string // substring of Reason
	}{
		{"probe ok", Verdict{}, Observation{At: at(0), Primary: ok(0)}, Policy{}, Healthy, "answers"},
		{"alive error 1040", Verdict{}, Observation{At: at(0),
			Primary: alive(0, "Error 1040: Too many connections")}, Policy{}, Healthy, "alive"},
		{"alive error 1045 ignores replicas", Verdict{}, Observation{At: at(0),
			Primary:  alive(0, "Error 1045 (28000): Access denied"),
			Replicas: []ReplicaView{connecting("db2", 2003)}}, Policy{}, Healthy, "alive"},
		{"first failure, replicas not read", Verdict{}, Observation{At: at(0), Primary: refused(0)},
			Policy{}, Suspect, "not consulted"},
		{"replica views older than the failure", Verdict{}, Observation{At: at(time.Second), Primary: refused(time.Second),
			Replicas: []ReplicaView{with(connecting("db2", 2003), func(v *ReplicaView) { v.At = at(0) })}},
			Policy{}, Suspect, "not consulted"},

		{"kill -9: every IO thread Connecting (2003, 2013)", suspect1, Observation{At: at(300 * time.Millisecond),
			Primary:  refused(250 * time.Millisecond),
			Replicas: []ReplicaView{connecting("db2", 2003), connecting("db3", 2013)}}, Policy{}, DeadPrimary, "2 of 2"},
		{"kill -9: one replica not noticed yet (old heartbeat)", suspect1, Observation{At: at(100 * time.Millisecond),
			Primary:  refused(100 * time.Millisecond),
			Replicas: []ReplicaView{connecting("db2", 2013), yes("db3", 800*time.Millisecond, false)}},
			Policy{}, Suspect, "1 not decided"},
		{"kill -9: moved before the failure is no proof of life", suspect1, Observation{At: at(100 * time.Millisecond),
			Primary:  refused(100 * time.Millisecond),
			Replicas: []ReplicaView{yes("db2", 900*time.Millisecond, true), yes("db3", 900*time.Millisecond, true)}},
			Policy{}, Suspect, "not decided"},
		{"IO thread stopped by retries exhausted, with error", suspect1, Observation{At: at(time.Second),
			Primary: refused(time.Second),
			Replicas: []ReplicaView{with(connecting("db2", 2003), func(v *ReplicaView) { v.IORunning = mysql.IONo }),
				connecting("db3", 2003)}}, Policy{}, DeadPrimary, ""},

		{"link cut: heartbeats aging, position still", suspect1, Observation{At: at(4 * time.Second),
			Primary:  timedOut(3 * time.Second),
			Replicas: []ReplicaView{yes("db2", 4*time.Second, false), yes("db3", 3500*time.Millisecond, false)}},
			Policy{}, DeadPrimary, ""},
		{"link cut: not long enough yet", suspect1, Observation{At: at(2 * time.Second),
			Primary:  timedOut(time.Second),
			Replicas: []ReplicaView{yes("db2", 2500*time.Millisecond, false), yes("db3", 2500*time.Millisecond, false)}},
			Policy{}, Suspect, "not decided"},
		{"link cut: one IO thread gave up, the other aging", suspect1, Observation{At: at(5 * time.Second),
			Primary:  timedOut(4 * time.Second),
			Replicas: []ReplicaView{connecting("db2", 2013), yes("db3", 5*time.Second, false)}},
			Policy{}, DeadPrimary, ""},
		{"frozen primary (SIGSTOP): IO Yes, silent", suspect1, Observation{At: at(6 * time.Second),
			Primary:  timedOut(5 * time.Second),
			Replicas: []ReplicaView{yes("db2", 3100*time.Millisecond, false), yes("db3", 3200*time.Millisecond, false)}},
			Policy{}, DeadPrimary, ""},
		{"silent but position moving is alive", suspect1, Observation{At: at(6 * time.Second),
			Primary:  timedOut(5 * time.Second),
			Replicas: []ReplicaView{yes("db2", 4*time.Second, true), yes("db3", 4*time.Second, false)}},
			Policy{}, Suspect, "not decided"},
		{"long heartbeat period raises the limit", suspect4, Observation{At: at(6 * time.Second),
			Primary: timedOut(5 * time.Second),
			Replicas: []ReplicaView{with(yes("db2", 5*time.Second, false),
				func(v *ReplicaView) { v.HeartbeatPeriod = 2 * time.Second })}},
			Policy{}, Suspect, "not decided"},
		{"long heartbeat period, past 3 periods", suspect1, Observation{At: at(8 * time.Second),
			Primary: timedOut(7 * time.Second),
			Replicas: []ReplicaView{with(yes("db2", 6500*time.Millisecond, false),
				func(v *ReplicaView) { v.HeartbeatPeriod = 2 * time.Second })}},
			Policy{}, DeadPrimary, ""},
		{"heartbeats disabled: silence proves nothing", suspect1, Observation{At: at(30 * time.Second),
			Primary: timedOut(29 * time.Second),
			Replicas: []ReplicaView{with(yes("db2", 30*time.Second, false),
				func(v *ReplicaView) { v.HeartbeatPeriod = -1 })}},
			Policy{}, Suspect, "not decided"},
		{"custom LostAfter", suspect4, Observation{At: at(6 * time.Second), Primary: timedOut(5 * time.Second),
			Replicas: []ReplicaView{yes("db2", 4*time.Second, false)}},
			Policy{LostAfter: 5 * time.Second}, Suspect, ""},

		{"manager-only partition: replicas hear from it", suspect1, Observation{At: at(3 * time.Second),
			Primary:  timedOut(2 * time.Second),
			Replicas: []ReplicaView{yes("db2", 500*time.Millisecond, false), yes("db3", time.Second, true)}},
			Policy{}, UnreachablePrimary, "still hear"},
		{"partition: one replica hears it, one lost it", suspect1, Observation{At: at(3 * time.Second),
			Primary:  timedOut(2 * time.Second),
			Replicas: []ReplicaView{connecting("db2", 2003), yes("db3", 200*time.Millisecond, false)}},
			Policy{MinReplicasAgreeing: 1}, UnreachablePrimary, "1 replica"},
		{"partition: the secondary check cannot override a replica that sees it", suspect1, Observation{
			At: at(3 * time.Second), Primary: timedOut(2 * time.Second),
			Replicas:       []ReplicaView{yes("db2", 200*time.Millisecond, false)},
			SecondaryCheck: code(0)}, Policy{}, UnreachablePrimary, ""},

		{"no replica reachable", suspect1, Observation{At: at(2 * time.Second), Primary: timedOut(time.Second),
			Replicas: []ReplicaView{unreachable("db2"), unreachable("db3")}}, Policy{}, UnreachablePrimary, "nor any replica"},
		{"no replica configured", suspect1, Observation{At: at(2 * time.Second), Primary: refused(time.Second),
			Replicas: []ReplicaView{}}, Policy{}, UnreachablePrimary, "cannot confirm"},
		{"no replica reachable, secondary 0", suspect1, Observation{At: at(2 * time.Second), Primary: timedOut(time.Second),
			Replicas: []ReplicaView{unreachable("db2")}, SecondaryCheck: code(0)}, Policy{}, DeadPrimary, "every route"},
		{"no replica reachable, secondary 2", suspect1, Observation{At: at(2 * time.Second), Primary: timedOut(time.Second),
			Replicas: []ReplicaView{unreachable("db2")}, SecondaryCheck: code(2)}, Policy{}, UnreachablePrimary, "exit 2"},
		{"no replica reachable, secondary 3", suspect1, Observation{At: at(2 * time.Second), Primary: timedOut(time.Second),
			Replicas: []ReplicaView{unreachable("db2")}, SecondaryCheck: code(3)}, Policy{}, UnreachablePrimary, "exit 3"},
		{"no replica reachable, secondary unknown code", suspect1, Observation{At: at(2 * time.Second),
			Primary: timedOut(time.Second), Replicas: []ReplicaView{unreachable("db2")}, SecondaryCheck: code(1)},
			Policy{}, UnreachablePrimary, ""},
		{"replicas not read yet, secondary 0", Verdict{}, Observation{At: at(0), Primary: timedOut(0),
			SecondaryCheck: code(0)}, Policy{}, DeadPrimary, "every route"},
		{"replicas undecided, secondary 0", suspect1, Observation{At: at(2 * time.Second), Primary: timedOut(time.Second),
			Replicas: []ReplicaView{yes("db2", 2500*time.Millisecond, false)}, SecondaryCheck: code(0)}, Policy{}, DeadPrimary, ""},
		{"replicas lost it, secondary 3 reached it", suspect1, Observation{At: at(2 * time.Second),
			Primary: refused(time.Second), Replicas: []ReplicaView{connecting("db2", 2003)}, SecondaryCheck: code(3)},
			Policy{}, UnreachablePrimary, "another route"},
		{"replicas lost it, secondary 2 does not veto", suspect1, Observation{At: at(2 * time.Second),
			Primary: refused(time.Second), Replicas: []ReplicaView{connecting("db2", 2003)}, SecondaryCheck: code(2)},
			Policy{}, DeadPrimary, ""},

		{"stopped by an operator is not evidence", suspect1, Observation{At: at(2 * time.Second), Primary: refused(time.Second),
			Replicas: []ReplicaView{with(yes("db2", -1, false), func(v *ReplicaView) { v.IORunning = mysql.IONo }),
				connecting("db3", 2003)}}, Policy{}, DeadPrimary, "1 of 1"},
		{"every replica stopped by an operator", suspect1, Observation{At: at(2 * time.Second), Primary: refused(time.Second),
			Replicas: []ReplicaView{with(yes("db2", -1, false), func(v *ReplicaView) { v.IORunning = mysql.IONo })}},
			Policy{}, UnreachablePrimary, "no reachable replica replicates"},
		{"replica of another source is not evidence", suspect1, Observation{At: at(2 * time.Second),
			Primary: refused(time.Second),
			Replicas: []ReplicaView{with(connecting("db2", 2003), func(v *ReplicaView) { v.Replicating = false }),
				connecting("db3", 2003)}}, Policy{}, DeadPrimary, "1 of 1"},
		{"unreachable replica does not block", suspect1, Observation{At: at(2 * time.Second), Primary: refused(time.Second),
			Replicas: []ReplicaView{unreachable("db2"), connecting("db3", 2003)}}, Policy{}, DeadPrimary, "1 of 1"},
		{"MinReplicasAgreeing=1 lets an undecided replica wait", suspect1, Observation{At: at(2 * time.Second),
			Primary:  refused(time.Second),
			Replicas: []ReplicaView{connecting("db2", 2003), yes("db3", 2500*time.Millisecond, false)}},
			Policy{MinReplicasAgreeing: 1}, DeadPrimary, ""},
		{"MinReplicasAgreeing=2 with one replica left", suspect1, Observation{At: at(2 * time.Second),
			Primary:  refused(time.Second),
			Replicas: []ReplicaView{connecting("db2", 2003), unreachable("db3")}},
			Policy{MinReplicasAgreeing: 2}, UnreachablePrimary, "2 required"},

		{"recovery after DeadPrimary", Verdict{Kind: DeadPrimary, Since: at(0)}, Observation{At: at(9 * time.Second),
			Primary: ok(9 * time.Second), Replicas: []ReplicaView{connecting("db2", 2003)}}, Policy{}, Healthy, ""},
		{"recovery after UnreachablePrimary", Verdict{Kind: UnreachablePrimary, Since: at(0)},
			Observation{At: at(9 * time.Second), Primary: ok(9 * time.Second)}, Policy{}, Healthy, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Analyze(tt.prev, tt.obs, tt.policy)
			if got.Kind != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("got %v (%s), want %v (…%s…)\nevidence:\n  %s", got.Kind, got.Reason, tt.want, tt.reason,
					strings.Join(got.Evidence, "\n  "))
			}
			if got.Kind != Healthy && len(got.Evidence) == 0 {
				t.Error("no evidence")
			}
		})
	}
}

func TestAnalyzeSince(t *testing.T) {
	// First failure at 1 s; later observations keep that start.
	v := Analyze(Verdict{Kind: Healthy, Since: at(-time.Hour)}, Observation{At: at(time.Second),
		Primary: timedOut(time.Second)}, Policy{})
	if v.Kind != Suspect || !v.Since.Equal(at(time.Second)) {
		t.Fatalf("first failure: %v since %v", v.Kind, v.Since)
	}
	// A replica heard from the primary 1.5 s before this read at 2.4 s:
	// at 0.9 s, before the failure began: no proof of life yet.
	v = Analyze(v, Observation{At: at(2400 * time.Millisecond), Primary: timedOut(2200 * time.Millisecond),
		Replicas: []ReplicaView{yes("db2", 1500*time.Millisecond, false)}}, Policy{})
	if v.Kind != Suspect || !v.Since.Equal(at(time.Second)) {
		t.Fatalf("second: %v since %v", v.Kind, v.Since)
	}
	// Then a heartbeat after the failure began: alive.
	v = Analyze(v, Observation{At: at(3 * time.Second), Primary: timedOut(2800 * time.Millisecond),
		Replicas: []ReplicaView{yes("db2", 500*time.Millisecond, false)}}, Policy{})
	if v.Kind != UnreachablePrimary || !v.Since.Equal(at(time.Second)) {
		t.Fatalf("third: %v since %v: %s", v.Kind, v.Since, v.Reason)
	}
	// The primary answers again: Healthy from then on.
	h := Analyze(v, Observation{At: at(5 * time.Second), Primary: ok(5 * time.Second)}, Policy{})
	if h.Kind != Healthy || !h.Since.Equal(at(5*time.Second)) {
		t.Fatalf("recovered: %v since %v", h.Kind, h.Since)
	}
	h2 := Analyze(h, Observation{At: at(6 * time.Second), Primary: ok(6 * time.Second)}, Policy{})
	if !h2.Since.Equal(at(5 * time.Second)) {
		t.Fatalf("healthy since moved: %v", h2.Since)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Healthy: "Healthy", Suspect: "Suspect",
		UnreachablePrimary: "UnreachablePrimary", DeadPrimary: "DeadPrimary", Kind(9): "Kind(9)"} {
		if k.String() != want {
			t.Errorf("%d: %q", int(k), k.String())
		}
	}
	b, err := json.Marshal(struct{ K Kind }{DeadPrimary})
	if err != nil || string(b) != `{"K":"DeadPrimary"}` {
		t.Errorf("json: %s %v", b, err)
	}
}

func TestPolicyLostAfter(t *testing.T) {
	p := Policy{}
	for hb, want := range map[time.Duration]time.Duration{0: 3 * time.Second, -1: 3 * time.Second,
		time.Second: 3 * time.Second, 500 * time.Millisecond: 3 * time.Second, 2 * time.Second: 6 * time.Second} {
		if got := p.lostAfter(hb); got != want {
			t.Errorf("lostAfter(%v) = %v, want %v", hb, got, want)
		}
	}
}
