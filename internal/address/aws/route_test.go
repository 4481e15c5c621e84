package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cloudmha/cloudmha/internal/address"
)

// recorder collects a test's logs and errors for the secret check, and
// runs timed steps.
type recorder struct {
	logs *syncBuffer
	log  *slog.Logger
	errs []error
}

func newRecorder() *recorder {
	logs := &syncBuffer{}
	return &recorder{logs: logs, log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

func (r *recorder) keep(err error) error {
	if err != nil {
		r.errs = append(r.errs, err)
	}
	return err
}

// step runs f with a deadline, fails the test on an error, logs the time.
func (r *recorder) step(t *testing.T, what string, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := r.keep(f(ctx)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond))
}

// holder checks Holder, and Status against it when it is a server.
func (r *recorder) holder(t *testing.T, m address.Mover, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := m.Holder(ctx)
	if r.keep(err) != nil || h != want {
		t.Fatalf("Holder = %q, %v; want %q", h, err, want)
	}
	if want != "" {
		if err := r.keep(m.(address.StatusChecker).Status(ctx, address.Target{Name: want})); err != nil {
			t.Fatalf("Status(%s): %v", want, err)
		}
	}
}

func reachable(n string) address.Target { return address.Target{Name: n, SSHReachable: true} }

// routeTargets returns the ENI each table routes cidr to ("" for none).
func routeTargets(t *testing.T, api *ec2.Client, cidr string, tables ...string) []string {
	t.Helper()
	out, err := api.DescribeRouteTables(context.Background(), &ec2.DescribeRouteTablesInput{RouteTableIds: tables})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(tables))
	for _, rt := range out.RouteTables {
		i := slices.Index(tables, sdkaws.ToString(rt.RouteTableId))
		for _, r := range rt.Routes {
			if sdkaws.ToString(r.DestinationCidrBlock) == cidr {
				got[i] = sdkaws.ToString(r.NetworkInterfaceId)
			}
		}
	}
	return got
}

func TestMotoRoute(t *testing.T) {
	l := newLab(t)
	rec := newRecorder()
	ctx := context.Background()
	var tables [2]string
	for i := range tables {
		out, err := l.api.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: sdkaws.String(l.vpc)})
		if err != nil {
			t.Fatal(err)
		}
		tables[i] = sdkaws.ToString(out.RouteTable.RouteTableId)
	}
	const overlay = "192.168.100.10/32"
	opts := func(extra ...string) map[string]string {
		o := map[string]string{"route_tables": tables[0] + ", " + tables[1], "cidr": overlay, "guest": "none"}
		for i := 0; i+1 < len(extra); i += 2 {
			o[extra[i]] = extra[i+1]
		}
		return o
	}
	m, err := NewRoute(l.config(KindRoute, opts()), Options{Logger: rec.log})
	if rec.keep(err) != nil {
		t.Fatal(err)
	}
	sdc := func(i int, on bool) {
		t.Helper()
		_, err := l.api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: sdkaws.String(l.enis[i]), SourceDestCheck: &types.AttributeBooleanValue{Value: sdkaws.Bool(on)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wantRoutes := func(want ...string) {
		t.Helper()
		if got := routeTargets(t, l.api, overlay, tables[:]...); !slices.Equal(got, want) {
			t.Fatalf("routes %v, want %v", got, want)
		}
	}

	t.Run("StatusSourceDestCheck", func(t *testing.T) {
		err := rec.keep(m.(address.StatusChecker).Status(ctx, address.Target{Name: "server1"}))
		if err == nil || !strings.Contains(err.Error(), "routed to no server") {
			t.Fatalf("Status with no route: %v", err)
		}
		for _, eni := range l.enis {
			if !strings.Contains(err.Error(), "ENI "+eni+" has the source/destination check enabled") {
				t.Fatalf("Status does not name %s: %v", eni, err)
			}
		}
		sdc(0, false)
		sdc(1, false)
		err = rec.keep(m.(address.StatusChecker).Status(ctx, address.Target{Name: "server1"}))
		if err == nil || strings.Contains(err.Error(), l.enis[0]) || !strings.Contains(err.Error(), "server server3: ENI "+l.enis[2]) {
			t.Fatalf("Status with server3's check on: %v", err)
		}
		t.Logf("status: %v", err)
		sdc(2, false)
		ign, err := NewRoute(l.config(KindRoute, opts("source_dest_check", "ignore")), Options{Logger: rec.log})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		sdc(0, true)
		defer sdc(0, false)
		rec.step(t, "acquire server1 (create routes)", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{New: reachable("server1")})
		})
		if err := rec.keep(ign.(address.StatusChecker).Status(ctx, address.Target{Name: "server1"})); err != nil {
			t.Fatalf("source_dest_check=ignore: %v", err)
		}
		if err := rec.keep(m.(address.StatusChecker).Status(ctx, address.Target{Name: "server1"})); err == nil || !strings.Contains(err.Error(), l.enis[0]) {
			t.Fatalf("Status with server1's check on: %v", err)
		}
	})

	t.Run("Moves", func(t *testing.T) {
		rec.holder(t, m, "server1")
		wantRoutes(l.enis[0], l.enis[0])
		rec.step(t, "acquire server1->server2 (replace routes)", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: reachable("server1"), New: reachable("server2")})
		})
		rec.holder(t, m, "server2")
		wantRoutes(l.enis[1], l.enis[1])
		rec.step(t, "acquire server2 again", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: reachable("server1"), New: reachable("server2")})
		})
		rec.step(t, "release server2 (delete routes)", func(ctx context.Context) error {
			return m.Release(ctx, address.Change{Old: reachable("server2"), New: reachable("server3")})
		})
		rec.holder(t, m, "")
		wantRoutes("", "")
		rec.step(t, "release server2 again", func(ctx context.Context) error {
			return m.Release(ctx, address.Change{Old: reachable("server2"), New: reachable("server3")})
		})
		rec.step(t, "acquire server3 after release (create, instance_id)", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: reachable("server2"), New: reachable("server3")})
		})
		rec.holder(t, m, "server3")
		wantRoutes(l.enis[2], l.enis[2])
		rec.step(t, "release server1 (not holding)", func(ctx context.Context) error {
			return m.Release(ctx, address.Change{Old: reachable("server1"), New: reachable("server3")})
		})
		rec.holder(t, m, "server3")
	})

	t.Run("Disagreement", func(t *testing.T) {
		if _, err := l.api.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: sdkaws.String(tables[1]),
			DestinationCidrBlock: sdkaws.String(overlay), NetworkInterfaceId: sdkaws.String(l.enis[0])}); err != nil {
			t.Fatal(err)
		}
		_, err := m.Holder(ctx)
		want := tables[0] + ": server3 (" + l.enis[2] + "); " + tables[1] + ": server1 (" + l.enis[0] + ")"
		if rec.keep(err) == nil || !errors.Is(err, ErrRoutesDisagree) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Holder with disagreeing tables: %v; want ErrRoutesDisagree naming %q", err, want)
		}
		if err := rec.keep(m.(address.StatusChecker).Status(ctx, address.Target{Name: "server3"})); !errors.Is(err, ErrRoutesDisagree) {
			t.Fatalf("Status with disagreeing tables: %v", err)
		}
		rec.step(t, "acquire server3 (one table to fix)", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: reachable("server1"), New: reachable("server3"), Online: true})
		})
		rec.holder(t, m, "server3")
	})

	t.Run("PartialFailure", func(t *testing.T) {
		la := &lostAnswer{EC2API: l.api, failTable: tables[1]}
		mf, err := NewRoute(l.config(KindRoute, opts()), Options{Logger: rec.log, EC2: la})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		// Failover: server3 is dead; table 2 cannot be changed.
		err = rec.keep(mf.Acquire(ctx, address.Change{Old: address.Target{Name: "server3"}, New: reachable("server1")}))
		var me *MoveError
		var te *TableErrors
		if !errors.As(err, &me) || !errors.As(err, &te) {
			t.Fatalf("Acquire with a failing table: %v; want a MoveError with TableErrors", err)
		}
		t.Logf("failover: %v", err)
		if len(te.Failed) != 1 || te.Failed[0].Table != tables[1] || !slices.Equal(te.Done, []string{tables[0]}) {
			t.Fatalf("table errors %+v", te)
		}
		state := tables[0] + ": server1 (" + l.enis[0] + "); " + tables[1] + ": server3 (" + l.enis[2] + ")"
		if !strings.HasPrefix(me.Rollback, "not attempted: failover") || me.State != state {
			t.Fatalf("rollback %q, state %q; want not attempted, %q", me.Rollback, me.State, state)
		}
		wantRoutes(l.enis[0], l.enis[2])
		if _, err := m.Holder(ctx); !errors.Is(rec.keep(err), ErrRoutesDisagree) {
			t.Fatalf("Holder after a partial failover: %v", err)
		}
		rec.step(t, "acquire server3 (repair)", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{New: reachable("server3")})
		})
		// Switchover: the routes go back to server3.
		err = rec.keep(mf.Acquire(ctx, address.Change{Old: reachable("server3"), New: reachable("server1"), Online: true}))
		if !errors.As(err, &me) || !errors.As(err, &te) {
			t.Fatalf("Acquire with a failing table: %v; want a MoveError with TableErrors", err)
		}
		t.Logf("switchover: %v", err)
		state = tables[0] + ": server3 (" + l.enis[2] + "); " + tables[1] + ": server3 (" + l.enis[2] + ")"
		if me.Rollback != "put back on server3 ("+l.enis[2]+")" || me.State != state {
			t.Fatalf("rollback %q, state %q; want put back on server3, %q", me.Rollback, me.State, state)
		}
		rec.holder(t, m, "server3")
	})

	t.Run("OverlayInsideVPC", func(t *testing.T) {
		inside := fmt.Sprintf("10.%d.200.10/32", l.net)
		in, err := NewRoute(l.config(KindRoute, opts("cidr", inside)), Options{Logger: rec.log})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		err = rec.keep(in.(address.StatusChecker).Status(ctx, address.Target{Name: "server3"}))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("cidr %s is inside 10.%d.0.0/16", inside, l.net)) {
			t.Fatalf("Status with the overlay IP inside the VPC: %v", err)
		}
	})

	t.Run("MissingTable", func(t *testing.T) {
		bad, err := NewRoute(l.config(KindRoute, opts("route_tables", tables[0]+",rtb-0123456789abcdef0")), Options{Logger: rec.log})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		_, err = bad.Holder(ctx)
		if !errors.Is(rec.keep(err), ErrNotFound) || !strings.Contains(err.Error(), "rtb-0123456789abcdef0") {
			t.Fatalf("Holder with a missing table: %v", err)
		}
	})

	t.Run("MissingInstance", func(t *testing.T) {
		gone, err := NewRoute(l.config(KindRoute, opts("instance_id.server3", "i-0123456789abcdef0")), Options{Logger: rec.log})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		err = rec.keep(gone.Release(ctx, address.Change{Old: address.Target{Name: "server3"}}))
		var pe *address.ProceedError
		if !errors.As(err, &pe) || !errors.Is(err, ErrNotFound) {
			t.Fatalf("Release of a missing ENI: %v; want a ProceedError wrapping ErrNotFound", err)
		}
	})

	t.Run("NoSecretsInLogs", func(t *testing.T) { checkNoSecrets(t, rec.logs, rec.errs) })
}
