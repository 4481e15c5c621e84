package aws

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/cloudmha/cloudmha/internal/address"
	awscloud "github.com/cloudmha/cloudmha/internal/cloud/aws"
	"github.com/cloudmha/cloudmha/internal/config"
)

// Route53 points an A record of a Route 53 hosted zone at the primary:
// alone, or as an extra layer over another mover. The record's value for
// a server is option ip.<server>, else the server's configured IPv4
// address; Holder maps the value back to the server.
//
// DNS cannot fence: resolvers and clients cache the answer for up to the
// TTL (and connections already open stay open), so after a move some
// clients still reach the old primary for a while whatever is done to the
// record. Fencing comes from the failover's other steps (read_only, killed
// connections, shutdown) or from an address mover that can fence; keep the
// TTL short (default 60 s).
type Route53 struct {
	core
	api Route53API
}

var (
	_ address.Mover         = (*Route53)(nil)
	_ address.StatusChecker = (*Route53)(nil)
)

// NewRoute53 builds the route53 mover. It validates the options and builds
// the Route 53 client (credentials from the standard chain; without a
// region it signs for us-east-1, Route 53 being global). No request is
// made.
func NewRoute53(cfg *config.Config, o Options) (address.Mover, error) {
	c, err := newCore(KindRoute53, cfg, o)
	if err != nil {
		return nil, err
	}
	c.log = c.log.With("zone", c.set.zoneID, "name", c.set.name)
	api := o.Route53
	if api == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl, err := awscloud.NewRoute53(ctx, c.cloudOptions(o))
		if err != nil {
			return nil, fmt.Errorf("%s mover: %w", KindRoute53, err)
		}
		api = cl
	} else if err := (awscloud.Options{Endpoint: c.set.endpoint}).Validate(); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindRoute53, err)
	}
	return &Route53{core: c, api: api}, nil
}

// Kind implements address.Mover.
func (m *Route53) Kind() string { return KindRoute53 }

// wrapZone adds context to err, and ErrNotFound to a "no such zone".
func (m *Route53) wrapZone(what string, err error) error {
	if apiCode(err) == "NoSuchHostedZone" {
		return fmt.Errorf("%s: hosted zone %s: %w: %w", what, m.set.zoneID, ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// record returns the A record set of the name, or nil when there is none.
func (m *Route53) record(ctx context.Context) (*types.ResourceRecordSet, error) {
	out, err := m.api.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId: sdkaws.String(m.set.zoneID), StartRecordName: sdkaws.String(m.set.name),
		StartRecordType: types.RRType(m.set.recordType), MaxItems: sdkaws.Int32(1),
	})
	if err != nil {
		return nil, m.wrapZone("list record sets", err)
	}
	for _, rr := range out.ResourceRecordSets {
		if rr.Type == types.RRType(m.set.recordType) && strings.EqualFold(unescapeName(sdkaws.ToString(rr.Name)), m.set.name) {
			if rr.SetIdentifier != nil {
				return nil, fmt.Errorf("record %s %s has a routing policy (set identifier %q): only simple records are supported", m.set.name, m.set.recordType, sdkaws.ToString(rr.SetIdentifier))
			}
			return &rr, nil
		}
	}
	return nil, nil
}

// unescapeName undoes Route 53's \ddd (octal) escapes in listed names.
func unescapeName(n string) string {
	if !strings.Contains(n, `\`) {
		return n
	}
	var b strings.Builder
	for i := 0; i < len(n); i++ {
		if n[i] == '\\' && i+3 < len(n) {
			if v, err := strconv.ParseUint(n[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(n[i])
	}
	return b.String()
}

// values are the record's addresses ("alias …" for an alias record).
func values(rr *types.ResourceRecordSet) []string {
	if rr == nil {
		return nil
	}
	if rr.AliasTarget != nil {
		return []string{"alias " + sdkaws.ToString(rr.AliasTarget.DNSName)}
	}
	vs := make([]string, 0, len(rr.ResourceRecords))
	for _, r := range rr.ResourceRecords {
		vs = append(vs, sdkaws.ToString(r.Value))
	}
	return vs
}

// serverOf maps an address to the server publishing it, or "".
func (m *Route53) serverOf(v string) string {
	for _, s := range m.servers {
		if ip, ok := m.set.ip[s.Name]; ok && ip.String() == v {
			return s.Name
		}
	}
	return ""
}

// holders maps the record's values to servers (names) and others (foreign).
func (m *Route53) holders(rr *types.ResourceRecordSet) (names, foreign []string) {
	for _, v := range values(rr) {
		if n := m.serverOf(v); n != "" {
			names = append(names, n)
		} else {
			foreign = append(foreign, v)
		}
	}
	return names, foreign
}

// describe is the record as last read, for logs and errors.
func (m *Route53) describe(rr *types.ResourceRecordSet) string {
	if rr == nil {
		return "no " + m.set.recordType + " record " + m.set.name
	}
	vs := values(rr)
	for i, v := range vs {
		if n := m.serverOf(v); n != "" {
			vs[i] = v + " (" + n + ")"
		}
	}
	return fmt.Sprintf("%s %s %s, TTL %d", m.set.name, m.set.recordType, strings.Join(vs, ", "), sdkaws.ToInt64(rr.TTL))
}

// points is true when the record gives exactly ip with the configured TTL.
func (m *Route53) points(rr *types.ResourceRecordSet, ip string) bool {
	return rr != nil && rr.AliasTarget == nil && slices.Equal(values(rr), []string{ip}) && sdkaws.ToInt64(rr.TTL) == m.set.ttl
}

// Holder implements address.Mover: the server whose address the record
// gives; "" when there is no record.
func (m *Route53) Holder(ctx context.Context) (string, error) {
	rr, err := m.record(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	names, foreign := m.holders(rr)
	return holderOf(m.kind, names, foreign)
}

// Status implements address.StatusChecker: the hosted zone exists and
// contains the name, and the record exists and points at the primary only.
func (m *Route53) Status(ctx context.Context, primary address.Target) error {
	var p problems
	z, err := m.api.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: sdkaws.String(m.set.zoneID)})
	if err != nil {
		p = append(p, m.wrapZone("get hosted zone", err))
	} else if z.HostedZone != nil {
		zone := strings.ToLower(unescapeName(sdkaws.ToString(z.HostedZone.Name)))
		if !strings.HasSuffix(zone, ".") {
			zone += "."
		}
		if m.set.name != zone && !strings.HasSuffix(m.set.name, "."+zone) {
			p = append(p, fmt.Errorf("name %s is not in the hosted zone %s (%s)", m.set.name, m.set.zoneID, zone))
		}
	}
	rr, err := m.record(ctx)
	switch {
	case err != nil:
		p = append(p, err)
	case rr == nil:
		p = append(p, fmt.Errorf("hosted zone %s has no %s record %s", m.set.zoneID, m.set.recordType, m.set.name))
	default:
		names, foreign := m.holders(rr)
		h, err := holderOf(m.kind, names, foreign)
		switch {
		case err != nil:
			p = append(p, err)
		case h != primary.Name:
			p = append(p, fmt.Errorf("the record points at %s, not at the primary %s (%s)", h, primary.Name, m.describe(rr)))
		}
	}
	if err := p.err(); err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	return nil
}

// change submits one change of the record set and returns its change id.
func (m *Route53) change(ctx context.Context, action types.ChangeAction, rr types.ResourceRecordSet, why string) (string, error) {
	out, err := m.api.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: sdkaws.String(m.set.zoneID),
		ChangeBatch: &types.ChangeBatch{
			Comment: sdkaws.String("cloudmha " + m.kind + ": " + why),
			Changes: []types.Change{{Action: action, ResourceRecordSet: &rr}},
		},
	})
	if err != nil {
		return "", m.wrapZone(fmt.Sprintf("%s %s %s", action, m.set.name, m.set.recordType), err)
	}
	if out.ChangeInfo == nil {
		return "", fmt.Errorf("%s %s: no change info in the answer", action, m.set.name)
	}
	return sdkaws.ToString(out.ChangeInfo.Id), nil
}

// insync polls GetChange every poll_interval until the change is INSYNC
// (Route 53's own waiter would wait at least 30 s between polls). With
// wait_insync=no it returns at once.
func (m *Route53) insync(ctx context.Context, id string) error {
	if !m.set.waitInsync {
		return nil
	}
	return m.poll(ctx, "change "+id+" INSYNC", m.set.pollInterval, m.set.pollInterval, func(ctx context.Context) (bool, string, error) {
		out, err := m.api.GetChange(ctx, &route53.GetChangeInput{Id: sdkaws.String(id)})
		if err != nil {
			return false, "", fmt.Errorf("get change %s: %w", id, err)
		}
		if out.ChangeInfo == nil {
			return false, "no change info", nil
		}
		st := out.ChangeInfo.Status
		return st == types.ChangeStatusInsync, string(st), nil
	})
}

// publish UPSERTs the record to server name's address, waits until the
// change is INSYNC, and reads the record back.
func (m *Route53) publish(ctx context.Context, name string) error {
	ip, ok := m.set.ip[name]
	if !ok {
		return fmt.Errorf("server %q is not in the configuration", name)
	}
	v := ip.String()
	id, err := m.change(ctx, types.ChangeActionUpsert, types.ResourceRecordSet{
		Name: sdkaws.String(m.set.name), Type: types.RRType(m.set.recordType), TTL: sdkaws.Int64(m.set.ttl),
		ResourceRecords: []types.ResourceRecord{{Value: sdkaws.String(v)}},
	}, "point at "+name)
	if err != nil {
		return err
	}
	if err := m.insync(ctx, id); err != nil {
		return fmt.Errorf("UPSERT %s %s %s: %w", m.set.name, m.set.recordType, v, err)
	}
	return m.poll(ctx, "record "+m.set.name+" read back as "+v, m.set.pollInterval, m.set.pollInterval, func(ctx context.Context) (bool, string, error) {
		rr, err := m.record(ctx)
		if err != nil {
			return false, "", err
		}
		return m.points(rr, v), m.describe(rr), nil
	})
}

// state says what the record is, for a MoveError.
func (m *Route53) state(ctx context.Context) string {
	rr, err := m.record(ctx)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return m.describe(rr)
}

// Acquire implements address.Mover: the record is UPSERTed to the new
// primary's address, GetChange is polled until INSYNC (wait_insync=yes),
// and the record is read back with ListResourceRecordSets. On failure see
// core.acquireFailed: the old value is put back only on a switchover.
func (m *Route53) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "acquire", "server", c.New.Name, "online", c.Online)
	ip, ok := m.set.ip[c.New.Name]
	if !ok {
		return fmt.Errorf("%s acquire: server %q is not in the configuration", m.kind, c.New.Name)
	}
	rr, err := m.record(ctx)
	known := err == nil
	if !known {
		log.Warn("cannot read the record before changing it: no rollback possible", "err", err)
	}
	if known && m.points(rr, ip.String()) {
		log.Info("the record already points at the new primary", "record", m.describe(rr))
		return nil
	}
	names, foreign := m.holders(rr)
	if err := m.publish(ctx, c.New.Name); err != nil {
		undo := putBack("the record", c.New.Name, known, names, foreign, func(ctx context.Context, prev string) (string, error) {
			return "", m.publish(ctx, prev)
		})
		return m.acquireFailed(ctx, c, err, undo, m.state)
	}
	log.Info("record acquired", "ip", ip.String(), "ttl", m.set.ttl, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// Release implements address.Mover. DNS cannot fence (see Route53), so
// with on_release=keep (the default) Release does nothing: the record
// keeps pointing at the old primary until Acquire repoints it, and clients
// that resolve meanwhile reach the old primary, fenced by the failover's
// other steps, exactly as clients with a cached answer do anyway. Deleting
// the record would not stop cached answers, but would make resolvers cache
// the NXDOMAIN for the zone's negative TTL (the SOA minimum, often longer
// than the record's TTL), delaying the clients' move to the new primary
// after Acquire. With on_release=delete the record is deleted when it
// gives the old primary's address (it is left alone otherwise), and
// Release waits until the deletion is INSYNC.
func (m *Route53) Release(ctx context.Context, c address.Change) error {
	log := m.log.With("op", "release", "server", c.Old.Name)
	if m.set.onRelease == "keep" {
		log.Info("record kept (on_release=keep): DNS cannot fence; Acquire repoints it")
		return nil
	}
	start := time.Now()
	rr, err := m.record(ctx)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	names, _ := m.holders(rr)
	if !slices.Contains(names, c.Old.Name) {
		log.Info("the record does not point at the old primary: nothing to delete", "record", m.describe(rr))
		return nil
	}
	id, err := m.change(ctx, types.ChangeActionDelete, *rr, "release from "+c.Old.Name)
	if err != nil {
		// Deleted meanwhile? Then the release is done.
		if again, rerr := m.record(ctx); rerr == nil && again == nil {
			log.Info("the record was deleted meanwhile")
			return nil
		}
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	if err := m.insync(ctx, id); err != nil {
		return fmt.Errorf("%s release: DELETE %s: %w", m.kind, m.set.name, err)
	}
	err = m.poll(ctx, "record "+m.set.name+" gone", m.set.pollInterval, m.set.pollInterval, func(ctx context.Context) (bool, string, error) {
		rr, err := m.record(ctx)
		if err != nil {
			return false, "", err
		}
		names, _ := m.holders(rr)
		return !slices.Contains(names, c.Old.Name), m.describe(rr), nil
	})
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	log.Info("record deleted", "was", m.describe(rr), "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
