package tencent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Resource and task states, as the API spells them.
const (
	StateAvailable = "AVAILABLE" // HaVip bound / ENI or address usable
	StateUnbind    = "UNBIND"    // HaVip held by no one
	StateInUse     = "INUSE"     // ENI attached (NetworkInterfaceState)
	StateMigrating = "MIGRATING" // private address being migrated

	TaskRunning = "RUNNING"
	TaskSuccess = "SUCCESS"
	TaskFailed  = "FAILED"

	AssocCVM = "CVM" // HaVip drift scope: an instance
	AssocENI = "ENI" // HaVip drift scope: an ENI
)

// Instance is a CVM instance. AddInstance gives it a primary ENI that
// carries PrivateIP.
type Instance struct {
	ID        string // ins-…
	PrivateIP string
	SubnetID  string
	VpcID     string
	Zone      string
	// ENIID is the primary ENI's id (default eni- + the id without ins-).
	ENIID string
	// MAC of the primary ENI (generated when empty).
	MAC string
}

// ENI is an elastic network interface.
type ENI struct {
	ID           string // eni-…
	InstanceID   string // attached instance, "" when not attached
	Primary      bool   // the instance's primary ENI
	PrimaryIP    string
	SecondaryIPs []string
	MAC          string
	SubnetID     string
	VpcID        string
	Zone         string
	DeviceIndex  int
}

// Association is one member of a HaVip's drift scope.
type Association struct {
	InstanceID string // ins-… (CVM) or eni-… (ENI)
	Type       string // AssocCVM or AssocENI
}

// HaVip is a high-availability virtual IP.
type HaVip struct {
	ID       string // havip-…
	Vip      string
	Name     string
	SubnetID string
	VpcID    string
	// CheckAssociate restricts drift to Associations.
	CheckAssociate bool
	Associations   []Association
	// InstanceID and NetworkInterfaceID name the holder: the instance and
	// ENI that last claimed the address (SetHaVipHolder).
	InstanceID         string
	NetworkInterfaceID string
	FlushedTime        time.Time
	CreatedTime        time.Time
}

// State is AVAILABLE when someone holds the HaVip, UNBIND otherwise.
func (h HaVip) State() string {
	if h.NetworkInterfaceID != "" {
		return StateAvailable
	}
	return StateUnbind
}

// Task is an asynchronous VPC task (DescribeVpcTaskResult).
type Task struct {
	ID          string // the RequestId of the call that started it
	Action      string
	Status      string // RUNNING, SUCCESS or FAILED
	Output      string
	Source      string // ENI the address leaves
	Destination string // ENI the address goes to
	IP          string
}

// Event types.
const (
	EventHaVipHolder        = "havip.holder"  // a new holder claimed the HaVip
	EventHaVipUnbound       = "havip.unbound" // no one holds it any more
	EventHaVipAssociated    = "havip.associated"
	EventHaVipDisassociated = "havip.disassociated"
	EventHaVipCreated       = "havip.created"
	EventIPMigrating        = "privateip.migrating"
	EventIPMigrated         = "privateip.migrated"
	EventIPMigrationFailed  = "privateip.migration_failed"
)

// Event is one state change, for the data plane.
type Event struct {
	Seq  int64
	Time time.Time
	Type string
	// ResourceID is the HaVip for havip.* events and the ENI holding the
	// address after the change for privateip.* events.
	ResourceID         string
	NetworkInterfaceID string // ENI holding the address after the change
	InstanceID         string // its instance (or the associated instance/ENI)
	IP                 string // the HaVip's or the migrated address
	Status             string // HaVip State, or the task status
	TaskID             string // privateip.* events
	// From is the previous holder's ENI (havip.holder, havip.unbound) or
	// the ENI the address leaves (privateip.*).
	From string
}

// OnChange registers fn, called (in order, never concurrently, without
// the server's lock held) for every state change after it happened.
func (s *Server) OnChange(fn func(Event)) {
	s.emitMu.Lock()
	defer s.emitMu.Unlock()
	s.handlers = append(s.handlers, fn)
}

// event makes an event; s.mu must be held.
func (s *Server) event(e Event) Event {
	s.seq++
	e.Seq = s.seq
	e.Time = s.now()
	return e
}

func (s *Server) emit(evs []Event) {
	if len(evs) == 0 {
		return
	}
	s.emitMu.Lock()
	defer s.emitMu.Unlock()
	for _, e := range evs {
		for _, h := range s.handlers {
			h(e)
		}
	}
}

// later runs f after the latency of the first of keys that has one (or
// the default); s.mu must be held. f runs with s.mu held and returns the
// events to emit.
func (s *Server) later(keys []string, f func() []Event) {
	d := s.latency
	for _, k := range keys {
		if v, ok := s.resLat[k]; ok {
			d = v
			break
		}
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		delete(s.timers, t)
		if s.closed {
			s.mu.Unlock()
			return
		}
		evs := f()
		s.mu.Unlock()
		s.emit(evs)
	})
	s.timers[t] = struct{}{}
}

func (s *Server) mac() string {
	s.nextID++
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", s.nextID>>16&0xff, s.nextID>>8&0xff, s.nextID&0xff)
}

func checkIP(what, ip string) error {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return fmt.Errorf("tencent emulator: %s: %q is not an IPv4 address", what, ip)
	}
	return nil
}

// AddInstance adds an instance and its primary ENI (replacing both).
func (s *Server) AddInstance(in Instance) error {
	if in.ID == "" {
		return fmt.Errorf("tencent emulator: instance without id")
	}
	if err := checkIP("instance "+in.ID, in.PrivateIP); err != nil {
		return err
	}
	if in.ENIID == "" {
		in.ENIID = "eni-" + strings.TrimPrefix(in.ID, "ins-")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.MAC == "" {
		in.MAC = s.mac()
	}
	if owner := s.ipOwner(in.PrivateIP); owner != nil && owner.ID != in.ENIID {
		return fmt.Errorf("tencent emulator: address %s is already on %s", in.PrivateIP, owner.ID)
	}
	s.instances[in.ID] = &in
	s.enis[in.ENIID] = &ENI{ID: in.ENIID, InstanceID: in.ID, Primary: true, PrimaryIP: in.PrivateIP, MAC: in.MAC,
		SubnetID: in.SubnetID, VpcID: in.VpcID, Zone: in.Zone}
	return nil
}

// AddENI adds (or replaces) an ENI; one with an InstanceID is attached.
func (s *Server) AddENI(e ENI) error {
	if e.ID == "" {
		return fmt.Errorf("tencent emulator: ENI without id")
	}
	if err := checkIP("ENI "+e.ID, e.PrimaryIP); err != nil {
		return err
	}
	for _, ip := range e.SecondaryIPs {
		if err := checkIP("ENI "+e.ID, ip); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.InstanceID != "" {
		if _, ok := s.instances[e.InstanceID]; !ok {
			return fmt.Errorf("tencent emulator: ENI %s: unknown instance %s", e.ID, e.InstanceID)
		}
	}
	for _, ip := range append([]string{e.PrimaryIP}, e.SecondaryIPs...) {
		if owner := s.ipOwner(ip); owner != nil && owner.ID != e.ID {
			return fmt.Errorf("tencent emulator: address %s is already on %s", ip, owner.ID)
		}
	}
	if e.MAC == "" {
		e.MAC = s.mac()
	}
	e.SecondaryIPs = slices.Clone(e.SecondaryIPs)
	s.enis[e.ID] = &e
	return nil
}

// AddPrivateIP assigns a secondary private address to an ENI.
func (s *Server) AddPrivateIP(eniID, ip string) error {
	if err := checkIP("ENI "+eniID, ip); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.enis[eniID]
	if !ok {
		return fmt.Errorf("tencent emulator: ENI %s not found", eniID)
	}
	if owner := s.ipOwner(ip); owner != nil {
		if owner == e {
			return nil
		}
		return fmt.Errorf("tencent emulator: address %s is already on %s", ip, owner.ID)
	}
	e.SecondaryIPs = append(e.SecondaryIPs, ip)
	return nil
}

// ipOwner returns the ENI carrying ip; s.mu must be held.
func (s *Server) ipOwner(ip string) *ENI {
	for _, e := range s.enis {
		if e.PrimaryIP == ip || slices.Contains(e.SecondaryIPs, ip) {
			return e
		}
	}
	return nil
}

// IPHolder tells which ENI (and instance) carries a private address.
func (s *Server) IPHolder(ip string) (eniID, instanceID string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.ipOwner(ip); e != nil {
		return e.ID, e.InstanceID, true
	}
	return "", "", false
}

// AddHaVip adds (or replaces) a HaVip.
func (s *Server) AddHaVip(h HaVip) error {
	if h.ID == "" {
		return fmt.Errorf("tencent emulator: HaVip without id")
	}
	if err := checkIP("HaVip "+h.ID, h.Vip); err != nil {
		return err
	}
	h.Associations = slices.Clone(h.Associations)
	for _, a := range h.Associations {
		if a.Type != AssocCVM && a.Type != AssocENI {
			return fmt.Errorf("tencent emulator: HaVip %s: association type %q (want CVM or ENI)", h.ID, a.Type)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.CreatedTime.IsZero() {
		h.CreatedTime = s.now()
	}
	s.havips[h.ID] = &h
	return nil
}

// GetENI returns a copy of an ENI.
func (s *Server) GetENI(id string) (ENI, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.enis[id]
	if !ok {
		return ENI{}, false
	}
	c := *e
	c.SecondaryIPs = slices.Clone(e.SecondaryIPs)
	return c, true
}

// GetHaVip returns a copy of a HaVip.
func (s *Server) GetHaVip(id string) (HaVip, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.havips[id]
	if !ok {
		return HaVip{}, false
	}
	c := *h
	c.Associations = slices.Clone(h.Associations)
	return c, true
}

// GetTask returns a copy of a task.
func (s *Server) GetTask(id string) (Task, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return Task{}, false
	}
	return *t, true
}

// SetHaVipHolder is the data plane's report that a host added the
// HaVip's address and announced it with gratuitous ARP. id is an instance
// (its ENI in the HaVip's subnet, the primary first, takes the address)
// or an ENI; "" unbinds the HaVip. A claim from outside the subnet, or
// from outside the drift scope when CheckAssociate is on, returns an error
// and changes nothing (the platform ignores it).
func (s *Server) SetHaVipHolder(havipID, id string) error {
	s.mu.Lock()
	h, ok := s.havips[havipID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("tencent emulator: HaVip %s not found", havipID)
	}
	var evs []Event
	if id == "" {
		evs = s.unbind(h)
		s.mu.Unlock()
		s.emit(evs)
		return nil
	}
	e := s.claimENI(h, id)
	if e == nil {
		s.mu.Unlock()
		return fmt.Errorf("tencent emulator: %s has no ENI in subnet %s of HaVip %s: claim ignored", id, h.SubnetID, havipID)
	}
	if h.CheckAssociate && !s.inScope(h, e) {
		s.mu.Unlock()
		return fmt.Errorf("tencent emulator: %s is outside the drift scope of HaVip %s (CheckAssociate): claim ignored", id, havipID)
	}
	if h.NetworkInterfaceID == e.ID {
		s.mu.Unlock()
		return nil
	}
	from := h.NetworkInterfaceID
	h.NetworkInterfaceID, h.InstanceID, h.FlushedTime = e.ID, e.InstanceID, s.now()
	evs = append(evs, s.event(Event{Type: EventHaVipHolder, ResourceID: h.ID, NetworkInterfaceID: e.ID, InstanceID: e.InstanceID, IP: h.Vip, Status: h.State(), From: from}))
	s.mu.Unlock()
	s.emit(evs)
	return nil
}

// claimENI is the ENI through which id claims h; s.mu must be held.
func (s *Server) claimENI(h *HaVip, id string) *ENI {
	if e, ok := s.enis[id]; ok {
		if e.SubnetID == h.SubnetID {
			return e
		}
		return nil
	}
	var found *ENI
	for _, eid := range sortedKeys(s.enis) {
		e := s.enis[eid]
		if e.InstanceID == id && e.SubnetID == h.SubnetID && (found == nil || e.Primary) {
			found = e
		}
	}
	return found
}

// inScope tells whether an ENI (or its instance) is in h's drift scope;
// s.mu must be held.
func (s *Server) inScope(h *HaVip, e *ENI) bool {
	for _, a := range h.Associations {
		if a.Type == AssocENI && a.InstanceID == e.ID || a.Type == AssocCVM && e.InstanceID != "" && a.InstanceID == e.InstanceID {
			return true
		}
	}
	return false
}

// unbind clears h's holder; s.mu must be held.
func (s *Server) unbind(h *HaVip) []Event {
	if h.NetworkInterfaceID == "" {
		return nil
	}
	from := h.NetworkInterfaceID
	h.NetworkInterfaceID, h.InstanceID, h.FlushedTime = "", "", s.now()
	return []Event{s.event(Event{Type: EventHaVipUnbound, ResourceID: h.ID, IP: h.Vip, Status: h.State(), From: from})}
}

// SetLatency changes the duration of asynchronous tasks.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = max(d, 0)
}

// SetResourceLatency makes the tasks touching one private address or ENI
// take d (a slow transition; time.Hour is a task that never ends in a
// test); d < 0 restores the default. An address's latency wins over the
// source ENI's, which wins over the destination's.
func (s *Server) SetResourceLatency(id string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d < 0 {
		delete(s.resLat, id)
		return
	}
	s.resLat[id] = d
}

// FailMigrations makes the next n migrations of the private address ip end
// FAILED (the address stays where it was), with output as the task's
// Output ("" for a generic text).
func (s *Server) FailMigrations(ip string, n int, output string) {
	if output == "" {
		output = "MigratePrivateIpAddress failed: the underlying network task did not complete (injected fault)."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failMig[ip] = append(s.failMig[ip], output)
	}
}

// Fault is an injected error answer.
type Fault struct {
	// Action is the API action it applies to; "" means every action.
	Action string
	// Times is how many calls fail (at least 1).
	Times int
	Code  string
	// Message defaults to a generic text.
	Message string
	// HTTPStatus is the answer's status: 0 means 200 with the API's JSON
	// error; another status emulates a gateway in front of the API (an
	// HTML page; the SDK reports ClientError.ParseJsonError).
	HTTPStatus int
}

type fault struct{ Fault }

// InjectError makes the next f.Times calls of f.Action fail with f. It
// applies after authentication: a refused signature is never masked.
func (s *Server) InjectError(f Fault) {
	if f.Times < 1 {
		f.Times = 1
	}
	if f.Message == "" {
		f.Message = "Injected fault " + f.Code + "."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{f})
}

// Throttle makes the next n calls of action ("" for any) fail with
// RequestLimitExceeded.
func (s *Server) Throttle(action string, n int) {
	s.InjectError(Fault{Action: action, Times: n, Code: "RequestLimitExceeded", Message: "Your current request times exceed the frequency limit of this action; please try again later."})
}

// ClearFaults removes the injected errors and migration failures not
// consumed yet.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.failMig = map[string][]string{}
}

// Calls returns how many authenticated calls of action were received
// (including those answered with an injected error).
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// takeFault consumes a matching fault; s.mu must be held.
func (s *Server) takeFault(action string) *apiError {
	for i, f := range s.faults {
		if f.Action != "" && f.Action != action {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return &apiError{Code: f.Code, Message: f.Message, HTTPStatus: f.HTTPStatus}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
