package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
)

// Route moves an overlay IP (outside the VPC CIDR) by pointing a /32 route
// at the primary's ENI in every listed route table: the clients' subnets,
// in any availability zone, reach the address through their table.
type Route struct {
	*base
}

var (
	_ address.Mover         = (*Route)(nil)
	_ address.StatusChecker = (*Route)(nil)
)

// NewRoute builds the aws-route mover. It validates the options and builds
// the EC2 client; ENIs are discovered on first use.
func NewRoute(cfg *config.Config, o Options) (address.Mover, error) {
	b, err := newBase(KindRoute, cfg, o)
	if err != nil {
		return nil, err
	}
	b.log = b.log.With("cidr", b.set.cidr.String())
	return &Route{base: b}, nil
}

// Kind implements address.Mover.
func (m *Route) Kind() string { return KindRoute }

// tableRoute is the route to the overlay CIDR in one route table.
type tableRoute struct {
	table  string
	vpc    string
	found  bool   // the table has a route for the CIDR
	eni    string // its target when a network interface
	target string // its target otherwise (gateway, NAT gateway, …)
	state  string // active | blackhole
	server string // the configured server whose ENI (or instance) it is
}

// holder is what the route points at, comparable across tables: "" (no
// route), "server NAME" or "foreign ID".
func (r tableRoute) holder() string {
	switch {
	case !r.found:
		return ""
	case r.server != "":
		return "server " + r.server
	case r.eni != "":
		return "foreign " + r.eni
	}
	return "foreign " + r.target
}

func (r tableRoute) String() string {
	var s string
	switch {
	case !r.found:
		s = "no route"
	case r.server != "" && r.eni != "":
		s = r.server + " (" + r.eni + ")"
	case r.server != "":
		s = r.server + " (" + r.target + ")"
	case r.eni != "":
		s = r.eni + " (not a configured server)"
	default:
		s = r.target + " (not a network interface)"
	}
	if r.found && r.state != "" && r.state != string(types.RouteStateActive) {
		s += ", " + r.state
	}
	return r.table + ": " + s
}

// describeRoutes is the state of every table, for logs and errors.
func describeRoutes(rs []tableRoute) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, "; ")
}

// allTo is true when every table routes the CIDR to eni, not as a
// blackhole.
func allTo(rs []tableRoute, eni string) bool {
	for _, r := range rs {
		if !r.found || r.eni != eni || r.state == string(types.RouteStateBlackhole) {
			return false
		}
	}
	return len(rs) > 0
}

// invert maps ENI ids to server names.
func invert(enis map[string]string) map[string]string {
	m := make(map[string]string, len(enis))
	for n, id := range enis {
		m[id] = n
	}
	return m
}

// routes describes the listed route tables (in option order) and the
// route to the overlay CIDR in each; byENI names the servers' ENIs.
func (m *Route) routes(ctx context.Context, byENI map[string]string) ([]tableRoute, error) {
	out, err := m.api.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: m.set.routeTables})
	if err != nil {
		if strings.HasPrefix(apiCode(err), "InvalidRouteTableID") {
			return nil, fmt.Errorf("describe route tables %s: %w: %w", strings.Join(m.set.routeTables, ", "), ErrNotFound, err)
		}
		return nil, fmt.Errorf("describe route tables %s: %w", strings.Join(m.set.routeTables, ", "), err)
	}
	byID := map[string]types.RouteTable{}
	for _, t := range out.RouteTables {
		byID[sdkaws.ToString(t.RouteTableId)] = t
	}
	cidr := m.set.cidr.String()
	var rs []tableRoute
	var missing []string
	for _, id := range m.set.routeTables {
		t, ok := byID[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		r := tableRoute{table: id, vpc: sdkaws.ToString(t.VpcId)}
		for _, rt := range t.Routes {
			if sdkaws.ToString(rt.DestinationCidrBlock) != cidr {
				continue
			}
			r.found, r.state = true, string(rt.State)
			r.eni = sdkaws.ToString(rt.NetworkInterfaceId)
			r.server = byENI[r.eni]
			if inst := sdkaws.ToString(rt.InstanceId); r.server == "" && inst != "" {
				for n, id := range m.set.instance {
					if id == inst {
						r.server = n
					}
				}
			}
			if r.eni == "" {
				r.target = firstOf(rt.InstanceId, rt.GatewayId, rt.NatGatewayId, rt.TransitGatewayId,
					rt.VpcPeeringConnectionId, rt.LocalGatewayId, rt.CarrierGatewayId, rt.EgressOnlyInternetGatewayId, rt.CoreNetworkArn)
			}
		}
		rs = append(rs, r)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("route table %s: %w", strings.Join(missing, ", "), ErrNotFound)
	}
	return rs, nil
}

// firstOf returns the first non-empty string, or "an unknown target".
func firstOf(ss ...*string) string {
	for _, s := range ss {
		if v := sdkaws.ToString(s); v != "" {
			return v
		}
	}
	return "an unknown target"
}

// routesHolder is Holder's answer for the tables' routes: every table must
// agree.
func routesHolder(kind string, rs []tableRoute) (string, error) {
	if len(rs) == 0 {
		return "", fmt.Errorf("%s holder: no route table", kind)
	}
	for _, r := range rs[1:] {
		if r.holder() != rs[0].holder() {
			return "", fmt.Errorf("%s holder: %w: %s", kind, ErrRoutesDisagree, describeRoutes(rs))
		}
	}
	switch r := rs[0]; {
	case !r.found:
		return "", nil
	case r.server != "":
		return r.server, nil
	}
	return "", fmt.Errorf("%s holder: %w: %s", kind, ErrForeignHolder, describeRoutes(rs))
}

// Holder implements address.Mover: the server whose ENI every listed
// table routes the overlay IP to; "" when no table has the route. Tables
// that disagree are an error wrapping ErrRoutesDisagree that lists them.
func (m *Route) Holder(ctx context.Context) (string, error) {
	enis, err := m.allENIs(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	rs, err := m.routes(ctx, invert(enis))
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	return routesHolder(m.kind, rs)
}

// Status implements address.StatusChecker: every server's ENI and every
// listed route table exist, the ENIs are in the tables' VPC, the overlay
// IP is outside that VPC's CIDRs, the ENIs have the source/destination
// check disabled (unless source_dest_check=ignore), and every table routes
// the overlay IP to the primary. All problems are reported together.
func (m *Route) Status(ctx context.Context, primary address.Target) error {
	var p problems
	enis, err := m.allENIs(ctx)
	if err != nil {
		p = append(p, err)
	}
	rs, err := m.routes(ctx, invert(enis))
	if err != nil {
		p = append(p, err)
	} else {
		p = append(p, m.checkNetwork(ctx, rs, enis)...)
		h, err := routesHolder(m.kind, rs)
		switch {
		case err != nil:
			p = append(p, err)
		case h != primary.Name:
			who := h
			if who == "" {
				who = "no server"
			}
			p = append(p, fmt.Errorf("the overlay IP is routed to %s, not to the primary %s (%s)", who, primary.Name, describeRoutes(rs)))
		}
	}
	if err := p.err(); err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	return nil
}

// checkNetwork checks the VPC side: the ENIs' VPC and source/destination
// check, and the overlay CIDR against the VPCs' CIDRs.
func (m *Route) checkNetwork(ctx context.Context, rs []tableRoute, enis map[string]string) problems {
	var p problems
	vpcs := map[string][]string{} // VPC -> tables
	for _, r := range rs {
		vpcs[r.vpc] = append(vpcs[r.vpc], r.table)
	}
	ids := make([]string, 0, len(vpcs))
	for v := range vpcs {
		ids = append(ids, v)
	}
	slices.Sort(ids)
	if len(ids) > 1 {
		p = append(p, fmt.Errorf("the route tables are in %d VPCs (%s): a route can only point at an ENI of its own VPC", len(ids), strings.Join(ids, ", ")))
	}
	out, err := m.api.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: ids})
	if err != nil {
		p = append(p, fmt.Errorf("describe VPC %s: %w", strings.Join(ids, ", "), err))
	} else {
		for _, v := range out.Vpcs {
			cidrs := []string{sdkaws.ToString(v.CidrBlock)}
			for _, a := range v.CidrBlockAssociationSet {
				if a.CidrBlockState == nil || a.CidrBlockState.State == types.VpcCidrBlockStateCodeAssociated {
					cidrs = append(cidrs, sdkaws.ToString(a.CidrBlock))
				}
			}
			for _, c := range cidrs {
				if pfx, err := netip.ParsePrefix(c); err == nil && pfx.Overlaps(m.set.cidr) {
					p = append(p, fmt.Errorf("cidr %s is inside %s, a CIDR of %s: the overlay IP must lie outside every VPC CIDR", m.set.cidr, c, sdkaws.ToString(v.VpcId)))
					break
				}
			}
		}
	}
	nis, err := m.interfaces(ctx, enis)
	if err != nil {
		return append(p, err)
	}
	for _, name := range sortedKeys(enis) {
		ni, ok := nis[enis[name]]
		if !ok {
			p = append(p, fmt.Errorf("server %s: ENI %s: %w", name, enis[name], ErrNotFound))
			continue
		}
		if v := sdkaws.ToString(ni.VpcId); v != "" && len(vpcs) > 0 && vpcs[v] == nil {
			p = append(p, fmt.Errorf("server %s: ENI %s is in %s, not in the route tables' VPC %s", name, enis[name], v, strings.Join(ids, ", ")))
		}
		if m.set.sourceDestCheck {
			if err := sourceDestCheck(name, ni); err != nil {
				p = append(p, err)
			}
		}
	}
	return p
}

// interfaces describes the given ENIs, by id.
func (m *Route) interfaces(ctx context.Context, enis map[string]string) (map[string]types.NetworkInterface, error) {
	ids := make([]string, 0, len(enis))
	for _, id := range enis {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	res := map[string]types.NetworkInterface{}
	if len(ids) == 0 {
		return res, nil
	}
	out, err := m.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ids})
	if err != nil {
		return nil, fmt.Errorf("describe network interfaces %s: %w", strings.Join(ids, ", "), err)
	}
	for _, ni := range out.NetworkInterfaces {
		res[sdkaws.ToString(ni.NetworkInterfaceId)] = ni
	}
	return res, nil
}

// sourceDestCheck reports an ENI whose source/destination check is on: EC2
// then drops the packets addressed to the overlay IP (not the ENI's own).
func sourceDestCheck(server string, ni types.NetworkInterface) error {
	if ni.SourceDestCheck != nil && !*ni.SourceDestCheck {
		return nil
	}
	id := sdkaws.ToString(ni.NetworkInterfaceId)
	return fmt.Errorf("server %s: ENI %s has the source/destination check enabled, so EC2 drops traffic to the overlay IP: disable it (aws ec2 modify-network-interface-attribute --network-interface-id %s --no-source-dest-check) or set source_dest_check=ignore", server, id, id)
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TableErrors reports a route change that failed in some of the route
// tables, table by table.
type TableErrors struct {
	Op     string       // what was done, e.g. "route 192.0.2.10/32 to server2 (eni-…)"
	Failed []TableError // in option order
	Done   []string     // the tables where it succeeded
}

// TableError is the failure in one route table.
type TableError struct {
	Table string
	Err   error
}

func (e *TableErrors) Error() string {
	parts := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		parts[i] = f.Table + ": " + f.Err.Error()
	}
	done := "none"
	if len(e.Done) > 0 {
		done = strings.Join(e.Done, ", ")
	}
	return fmt.Sprintf("%s failed in %d of %d route tables (%s); done in: %s", e.Op, len(e.Failed), len(e.Failed)+len(e.Done), strings.Join(parts, "; "), done)
}

// Unwrap returns the tables' errors.
func (e *TableErrors) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// noRoute is true for the errors of a route that does not exist: EC2
// answers ReplaceRoute with InvalidParameterValue ("There is no route
// defined for …") and DeleteRoute with InvalidRoute.NotFound.
func noRoute(err error) bool {
	switch apiCode(err) {
	case "InvalidRoute.NotFound":
		return true
	case "InvalidParameterValue":
		return strings.Contains(strings.ToLower(err.Error()), "no route")
	}
	return false
}

// setRoute points the overlay CIDR at eni in one table: ReplaceRoute when
// the route exists, CreateRoute when not, each falling back on the other
// when the table changed meanwhile.
func (m *Route) setRoute(ctx context.Context, table, eni string, exists bool) error {
	cidr := m.set.cidr.String()
	replace := func() error {
		_, err := m.api.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{
			RouteTableId: sdkaws.String(table), DestinationCidrBlock: sdkaws.String(cidr), NetworkInterfaceId: sdkaws.String(eni),
		})
		if err != nil {
			return fmt.Errorf("replace route %s -> %s: %w", cidr, eni, err)
		}
		return nil
	}
	create := func() error {
		_, err := m.api.CreateRoute(ctx, &ec2.CreateRouteInput{
			RouteTableId: sdkaws.String(table), DestinationCidrBlock: sdkaws.String(cidr), NetworkInterfaceId: sdkaws.String(eni),
		})
		if err != nil {
			return fmt.Errorf("create route %s -> %s: %w", cidr, eni, err)
		}
		return nil
	}
	if exists {
		err := replace()
		if err != nil && noRoute(err) {
			m.log.Info("no route to replace: creating it", "table", table)
			return create()
		}
		return err
	}
	err := create()
	if err != nil && apiCode(err) == "RouteAlreadyExists" {
		m.log.Info("the route exists already: replacing it", "table", table)
		return replace()
	}
	return err
}

// pointAll routes the overlay CIDR to server name's ENI in every table
// (before: the tables' routes as last seen, nil when unknown) and waits
// until EC2 shows it in all of them. A failure in some tables is a
// *TableErrors naming each.
func (m *Route) pointAll(ctx context.Context, name, eni string, before []tableRoute, byENI map[string]string) error {
	prev := map[string]tableRoute{}
	for _, r := range before {
		prev[r.table] = r
	}
	te := &TableErrors{Op: fmt.Sprintf("route %s to %s (%s)", m.set.cidr, name, eni)}
	for _, t := range m.set.routeTables {
		r, known := prev[t]
		if known && allTo([]tableRoute{r}, eni) {
			te.Done = append(te.Done, t)
			continue
		}
		if err := m.setRoute(ctx, t, eni, !known || r.found); err != nil {
			te.Failed = append(te.Failed, TableError{Table: t, Err: err})
			continue
		}
		te.Done = append(te.Done, t)
	}
	if len(te.Failed) > 0 {
		return te
	}
	return m.wait(ctx, fmt.Sprintf("%s routed to %s (%s) in %s", m.set.cidr, name, eni, strings.Join(m.set.routeTables, ", ")),
		func(ctx context.Context) (bool, string, error) {
			rs, err := m.routes(ctx, byENI)
			if err != nil {
				return false, "", err
			}
			return allTo(rs, eni), describeRoutes(rs), nil
		})
}

// knownENIs maps the ENIs of the servers that resolve (and at least
// extra's) to their names.
func (m *Route) knownENIs(ctx context.Context, log *slog.Logger, extra, extraENI string) map[string]string {
	enis, err := m.allENIs(ctx)
	if err != nil {
		log.Warn("cannot resolve every server's ENI: routes to them show as foreign", "err", err)
	}
	byENI := invert(enis)
	byENI[extraENI] = extra
	return byENI
}

// Acquire implements address.Mover: every listed route table gets the
// route to the overlay CIDR pointed at the new primary's ENI (ReplaceRoute,
// or CreateRoute where there is none), EC2 is polled until every table
// shows it, then the guest side is configured over SSH. A failure in some
// tables is reported table by table (*TableErrors inside the
// *MoveError); see core.acquireFailed for the rollback, done only on a
// switchover.
func (m *Route) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "acquire", "server", c.New.Name, "online", c.Online)
	eni, err := m.eniOf(ctx, c.New.Name)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	byENI := m.knownENIs(ctx, log, c.New.Name, eni)
	before, err := m.routes(ctx, byENI)
	known := err == nil
	if !known {
		log.Warn("cannot tell where the routes point before moving them: no rollback possible", "err", err)
	}
	if m.set.sourceDestCheck {
		nis, err := m.interfaces(ctx, map[string]string{c.New.Name: eni})
		if ni, ok := nis[eni]; err == nil && ok {
			if err := sourceDestCheck(c.New.Name, ni); err != nil {
				log.Warn("moving the routes anyway", "problem", err)
			}
		}
	}
	fail := func(cause error) error {
		return m.acquireFailed(ctx, c, cause, m.undo(c.New.Name, known, before, byENI), func(ctx context.Context) string {
			rs, err := m.routes(ctx, byENI)
			if err != nil {
				return "unknown: " + err.Error()
			}
			return describeRoutes(rs)
		})
	}
	if known && allTo(before, eni) {
		log.Info("the routes already point at the new primary's ENI")
	} else {
		if known {
			log.Info("moving the routes", "before", describeRoutes(before))
		}
		if err := m.pointAll(ctx, c.New.Name, eni, before, byENI); err != nil {
			return fail(err)
		}
	}
	moved := time.Since(start)
	if m.set.guest == "ssh" {
		if err := m.guest(ctx, c.New.Name, true); err != nil {
			return fail(fmt.Errorf("guest side: %w", err))
		}
		if c.Old.Name != "" && c.Old.Name != c.New.Name && c.Old.SSHReachable {
			if err := m.guest(ctx, c.Old.Name, false); err != nil {
				log.Warn("could not remove the overlay IP from the old primary's interface (the routes no longer lead there)", "old", c.Old.Name, "err", err)
			}
		}
	}
	log.Info("routes acquired", "eni", eni, "tables", len(m.set.routeTables), "ec2_elapsed", moved.Round(time.Millisecond), "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// undo is the rollback of a failed Acquire: when every table routed the
// overlay IP to one other server before, the routes are pointed back at it.
func (m *Route) undo(target string, known bool, before []tableRoute, byENI map[string]string) undoFunc {
	return func(ctx context.Context) string {
		if !known {
			return "not attempted: where the routes pointed before is unknown"
		}
		h, err := routesHolder(m.kind, before)
		var names, foreign []string
		switch {
		case errors.Is(err, ErrRoutesDisagree):
			return "not attempted: the route tables disagreed before (" + describeRoutes(before) + ")"
		case err != nil:
			foreign = []string{strings.TrimPrefix(before[0].holder(), "foreign ")}
		case h != "":
			names = []string{h}
		}
		return putBack("the overlay IP", target, true, names, foreign, func(ctx context.Context, prev string) (string, error) {
			eni, err := m.eniOf(ctx, prev)
			if err != nil {
				return "", err
			}
			cur, err := m.routes(ctx, byENI)
			if err != nil {
				cur = nil
			}
			if err := m.pointAll(ctx, prev, eni, cur, byENI); err != nil {
				return "", err
			}
			detail := " (" + eni + ")"
			if m.set.guest == "ssh" {
				if gerr := m.guest(ctx, target, false); gerr != nil {
					detail += fmt.Sprintf("; guest del on %s failed: %v", target, gerr)
				}
				if gerr := m.guest(ctx, prev, true); gerr != nil {
					detail += fmt.Sprintf("; guest add on %s failed: %v", prev, gerr)
				}
			}
			return detail, nil
		})(ctx)
	}
}

// Release implements address.Mover: every listed table's route to the
// overlay IP that points at the old primary is deleted (DeleteRoute), EC2
// is polled until no table sends the overlay IP there, then the address
// is removed from the old primary's interface over SSH when reachable.
// Routes pointing elsewhere (already at the new primary, or at a target
// outside the cluster) are left alone; an old ENI that no longer exists
// cannot receive traffic: that is an address.ProceedError.
//
// Why delete the routes instead of leaving them for Acquire to replace:
// once Release returns nil the old primary must not receive client
// traffic through the address (the first step of fencing). A route to a
// dead host is harmless, but Release cannot tell a dead host from a live,
// fenced one (every switchover; a failover across a network partition),
// and a route to a live host keeps delivering clients to it until Acquire
// runs — or for good, if the failover stops in between. VPC route tables
// offer no explicit blackhole target, so deleting is the way to point the
// routes nowhere: without the /32 route, traffic to the overlay IP (outside
// the VPC CIDR) follows the table's less specific routes, usually the
// default route to an internet or NAT gateway where a private address is
// dropped, so clients time out instead of reaching the fenced host. The
// price is a window without any route between Release and Acquire (which
// then uses CreateRoute) — the window every mover has. The overlay range
// must therefore not be routed anywhere useful by a less specific route
// (a transit gateway, VPN or peering that knows it).
func (m *Route) Release(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "release", "server", c.Old.Name)
	eni, err := m.eniOf(ctx, c.Old.Name)
	if errors.Is(err, ErrNotFound) {
		return &address.ProceedError{Err: fmt.Errorf("%s release: %w", m.kind, err)}
	}
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	byENI := map[string]string{eni: c.Old.Name}
	rs, err := m.routes(ctx, byENI)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	cidr := m.set.cidr.String()
	te := &TableErrors{Op: fmt.Sprintf("delete route %s to %s (%s)", cidr, c.Old.Name, eni)}
	for _, r := range rs {
		if r.server != c.Old.Name {
			continue
		}
		_, err := m.api.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: sdkaws.String(r.table), DestinationCidrBlock: sdkaws.String(cidr)})
		if err != nil && !noRoute(err) {
			te.Failed = append(te.Failed, TableError{Table: r.table, Err: err})
			continue
		}
		te.Done = append(te.Done, r.table)
	}
	if len(te.Failed) > 0 {
		return fmt.Errorf("%s release: %w", m.kind, te)
	}
	if len(te.Done) == 0 {
		log.Info("no route points at the old primary: nothing to delete", "routes", describeRoutes(rs))
	} else {
		err = m.wait(ctx, fmt.Sprintf("no route %s to %s (%s)", cidr, c.Old.Name, eni), func(ctx context.Context) (bool, string, error) {
			rs, err := m.routes(ctx, byENI)
			if err != nil {
				return false, "", err
			}
			for _, r := range rs {
				if r.server == c.Old.Name {
					return false, describeRoutes(rs), nil
				}
			}
			return true, describeRoutes(rs), nil
		})
		if err != nil {
			return fmt.Errorf("%s release: %w", m.kind, err)
		}
	}
	if m.set.guest == "ssh" && c.Old.SSHReachable {
		if err := m.guest(ctx, c.Old.Name, false); err != nil {
			log.Warn("could not remove the overlay IP from the old primary's interface (no route leads there any more)", "err", err)
		}
	}
	log.Info("routes released", "deleted_in", te.Done, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
