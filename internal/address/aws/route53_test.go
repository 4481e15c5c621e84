package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/cloudmha/cloudmha/internal/address"
	awscloud "github.com/cloudmha/cloudmha/internal/cloud/aws"
	"github.com/cloudmha/cloudmha/internal/config"
)

// pendingChange is a Route53API that keeps the next submitted change
// PENDING for good (when stick is set) and counts GetChange calls. (moto
// gives every change the same id: the stuck one gets an id of its own.)
type pendingChange struct {
	Route53API
	mu    sync.Mutex
	stick bool
	stuck map[string]bool
	gets  atomic.Int32
}

func (p *pendingChange) stickNext() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stick = true
}

func (p *pendingChange) ChangeResourceRecordSets(ctx context.Context, in *route53.ChangeResourceRecordSetsInput, o ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error) {
	out, err := p.Route53API.ChangeResourceRecordSets(ctx, in, o...)
	if err == nil {
		p.mu.Lock()
		if p.stick {
			if p.stuck == nil {
				p.stuck = map[string]bool{}
			}
			id := fmt.Sprintf("/change/CSTUCK%d", len(p.stuck))
			p.stuck[id] = true
			out.ChangeInfo.Id = sdkaws.String(id)
			out.ChangeInfo.Status = r53types.ChangeStatusPending
			p.stick = false
		}
		p.mu.Unlock()
	}
	return out, err
}

func (p *pendingChange) GetChange(ctx context.Context, in *route53.GetChangeInput, o ...func(*route53.Options)) (*route53.GetChangeOutput, error) {
	p.gets.Add(1)
	p.mu.Lock()
	stuck := p.stuck[sdkaws.ToString(in.Id)]
	p.mu.Unlock()
	if stuck {
		return &route53.GetChangeOutput{ChangeInfo: &r53types.ChangeInfo{Id: in.Id, Status: r53types.ChangeStatusPending}}, nil
	}
	return p.Route53API.GetChange(ctx, in, o...)
}

func TestMotoRoute53(t *testing.T) {
	url := motoEnv(t)
	rec := newRecorder()
	ctx := context.Background()
	api, err := awscloud.NewRoute53(ctx, awscloud.Options{Endpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	z, err := api.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{
		Name: sdkaws.String("db.example."), CallerReference: sdkaws.String(fmt.Sprint("cloudmha-test-", time.Now().UnixNano())),
	})
	if err != nil {
		t.Fatal(err)
	}
	zone := sdkaws.ToString(z.HostedZone.Id) // "/hostedzone/…": accepted as is
	cfg := func(extra ...string) *config.Config {
		o := map[string]string{"endpoint": url, "hosted_zone_id": zone, "name": "Primary.DB.example", "poll_interval": "20ms"}
		for i := 0; i+1 < len(extra); i += 2 {
			o[extra[i]] = extra[i+1]
		}
		return &config.Config{
			Servers: []config.Server{{Name: "server1", IP: "10.2.1.10"}, {Name: "server2", IP: "10.2.1.11"}, {Name: "server3", Hostname: "db3.internal"}},
			Address: config.Address{Mover: KindRoute53, Options: o},
		}
	}
	const ip3 = "ip.server3"
	m, err := New(cfg(ip3, "10.2.1.12"), Options{Logger: rec.log})
	if rec.keep(err) != nil {
		t.Fatal(err)
	}
	record := func(t *testing.T) string {
		t.Helper()
		out, err := api.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: sdkaws.String(zone),
			StartRecordName: sdkaws.String("primary.db.example."), StartRecordType: r53types.RRTypeA, MaxItems: sdkaws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		for _, rr := range out.ResourceRecordSets {
			if sdkaws.ToString(rr.Name) == "primary.db.example." && rr.Type == r53types.RRTypeA {
				var vs []string
				for _, r := range rr.ResourceRecords {
					vs = append(vs, sdkaws.ToString(r.Value))
				}
				return fmt.Sprintf("%s ttl=%d", strings.Join(vs, ","), sdkaws.ToInt64(rr.TTL))
			}
		}
		return "none"
	}

	t.Run("Moves", func(t *testing.T) {
		err := rec.keep(m.(address.StatusChecker).Status(ctx, address.Target{Name: "server1"}))
		if err == nil || !strings.Contains(err.Error(), "has no A record primary.db.example.") {
			t.Fatalf("Status without the record: %v", err)
		}
		rec.holder(t, m, "")
		rec.step(t, "route53 acquire server1 (create)", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{New: reachable("server1")})
		})
		rec.holder(t, m, "server1")
		if got := record(t); got != "10.2.1.10 ttl=60" {
			t.Fatalf("record %s", got)
		}
		rec.step(t, "route53 acquire server1->server2", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: reachable("server1"), New: reachable("server2")})
		})
		rec.holder(t, m, "server2")
		rec.step(t, "route53 acquire server2 again", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: reachable("server1"), New: reachable("server2")})
		})
		rec.step(t, "route53 release server2 (keep)", func(ctx context.Context) error {
			return m.Release(ctx, address.Change{Old: reachable("server2"), New: reachable("server3")})
		})
		rec.holder(t, m, "server2")
		rec.step(t, "route53 acquire server3 (ip option, ttl 30)", func(ctx context.Context) error {
			m3, err := New(cfg(ip3, "10.2.1.12", "ttl", "30"), Options{Logger: rec.log})
			if err != nil {
				return err
			}
			return m3.Acquire(ctx, address.Change{Old: reachable("server2"), New: reachable("server3")})
		})
		if got := record(t); got != "10.2.1.12 ttl=30" {
			t.Fatalf("record %s", got)
		}
		rec.holder(t, m, "server3")
	})

	t.Run("ReleaseDelete", func(t *testing.T) {
		d, err := New(cfg(ip3, "10.2.1.12", "on_release", "delete"), Options{Logger: rec.log})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		rec.step(t, "route53 release server1 (not holding)", func(ctx context.Context) error {
			return d.Release(ctx, address.Change{Old: reachable("server1"), New: reachable("server2")})
		})
		rec.holder(t, d, "server3")
		rec.step(t, "route53 release server3 (delete)", func(ctx context.Context) error {
			return d.Release(ctx, address.Change{Old: reachable("server3"), New: reachable("server1")})
		})
		rec.holder(t, d, "")
		if got := record(t); got != "none" {
			t.Fatalf("record %s after the delete", got)
		}
		rec.step(t, "route53 release server3 again", func(ctx context.Context) error {
			return d.Release(ctx, address.Change{Old: reachable("server3"), New: reachable("server1")})
		})
		rec.step(t, "route53 acquire server1 after release", func(ctx context.Context) error {
			return d.Acquire(ctx, address.Change{Old: reachable("server3"), New: reachable("server1")})
		})
		rec.holder(t, d, "server1")
	})

	t.Run("Foreign", func(t *testing.T) {
		other, err := New(cfg(ip3, "10.2.9.9"), Options{Logger: rec.log})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		rec.step(t, "route53 acquire server3 as 10.2.9.9", func(ctx context.Context) error {
			return other.Acquire(ctx, address.Change{New: reachable("server3")})
		})
		_, err = m.Holder(ctx)
		if !errors.Is(rec.keep(err), ErrForeignHolder) || !strings.Contains(err.Error(), "10.2.9.9") {
			t.Fatalf("Holder of an unknown value: %v", err)
		}
		rec.step(t, "route53 acquire server1", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{New: reachable("server1")})
		})
	})

	t.Run("StatusZone", func(t *testing.T) {
		nz, err := New(cfg(ip3, "10.2.1.12", "hosted_zone_id", "Z0123456789ABCDEFGHIJ"), Options{Logger: rec.log})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		err = rec.keep(nz.(address.StatusChecker).Status(ctx, address.Target{Name: "server1"}))
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "Z0123456789ABCDEFGHIJ") {
			t.Fatalf("Status of a missing zone: %v", err)
		}
		out, err := New(cfg(ip3, "10.2.1.12", "name", "primary.other.example"), Options{Logger: rec.log})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		err = rec.keep(out.(address.StatusChecker).Status(ctx, address.Target{Name: "server1"}))
		if err == nil || !strings.Contains(err.Error(), "name primary.other.example. is not in the hosted zone") {
			t.Fatalf("Status of a name outside the zone: %v", err)
		}
	})

	t.Run("Rollback", func(t *testing.T) {
		p := &pendingChange{Route53API: api}
		pm, err := New(cfg(ip3, "10.2.1.12", "wait_timeout", "400ms"), Options{Logger: rec.log, Route53: p})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		rec.holder(t, pm, "server1")
		// Failover: the change never gets INSYNC; the record stays as
		// UPSERTed and the error says so.
		p.stickNext()
		start := time.Now()
		err = rec.keep(pm.Acquire(ctx, address.Change{Old: address.Target{Name: "server1"}, New: reachable("server2")}))
		var me *MoveError
		if !errors.Is(err, ErrTimeout) || !errors.As(err, &me) {
			t.Fatalf("Acquire with a change never INSYNC: %v; want a MoveError wrapping ErrTimeout", err)
		}
		t.Logf("failover after %s, %d GetChange: %v", time.Since(start).Round(time.Millisecond), p.gets.Load(), err)
		if n := p.gets.Load(); n < 5 {
			t.Fatalf("%d GetChange calls in 400ms at a 20ms poll interval", n)
		}
		if !strings.HasPrefix(me.Rollback, "not attempted: failover") || me.State != "primary.db.example. A 10.2.1.11 (server2), TTL 60" {
			t.Fatalf("rollback %q, state %q", me.Rollback, me.State)
		}
		// Switchover: the old value is put back.
		p.stickNext()
		err = rec.keep(pm.Acquire(ctx, address.Change{Old: reachable("server2"), New: reachable("server3"), Online: true}))
		if !errors.Is(err, ErrTimeout) || !errors.As(err, &me) {
			t.Fatalf("Acquire with a change never INSYNC: %v", err)
		}
		t.Logf("switchover: %v", err)
		if me.Rollback != "put back on server2" || me.State != "primary.db.example. A 10.2.1.11 (server2), TTL 60" {
			t.Fatalf("rollback %q, state %q", me.Rollback, me.State)
		}
		rec.holder(t, m, "server2")
	})

	t.Run("NoWaitInsync", func(t *testing.T) {
		p := &pendingChange{Route53API: api}
		nw, err := New(cfg(ip3, "10.2.1.12", "wait_insync", "no"), Options{Logger: rec.log, Route53: p})
		if rec.keep(err) != nil {
			t.Fatal(err)
		}
		p.stickNext()
		rec.step(t, "route53 acquire server1 without waiting for INSYNC", func(ctx context.Context) error {
			return nw.Acquire(ctx, address.Change{Old: reachable("server2"), New: reachable("server1")})
		})
		if n := p.gets.Load(); n != 0 {
			t.Fatalf("%d GetChange calls with wait_insync=no", n)
		}
		rec.holder(t, m, "server1")
	})

	t.Run("NoSecretsInLogs", func(t *testing.T) { checkNoSecrets(t, rec.logs, rec.errs) })
}
