package aliyun

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Resource states.
const (
	StatusAvailable     = "Available"
	StatusInUse         = "InUse"
	StatusAttaching     = "Attaching"
	StatusDetaching     = "Detaching"
	StatusAssociating   = "Associating"
	StatusUnassociating = "Unassociating"
	StatusRunning       = "Running"
)

// Instance is an ECS instance.
type Instance struct {
	ID        string
	PrivateIP string
	ZoneID    string
	VSwitchID string
	VpcID     string
	Status    string // Running when empty
}

// ENI types.
const (
	ENITypePrimary   = "Primary"
	ENITypeSecondary = "Secondary"
)

// ENI is an elastic network interface.
type ENI struct {
	ID string
	// Type is ENITypeSecondary (default) or ENITypePrimary: an instance's
	// primary ENI, which needs an InstanceID and cannot be detached.
	Type         string
	Status       string // Available when empty (InUse when InstanceID is set)
	InstanceID   string // attached instance
	PrimaryIP    string
	SecondaryIPs []string
	MAC          string
	ZoneID       string
	VSwitchID    string
	VpcID        string
}

// HaVip is a high-availability virtual IP.
type HaVip struct {
	ID        string
	IP        string
	VSwitchID string
	VpcID     string
	Status    string   // derived from Instances when empty
	Instances []string // associated instance (or ENI) ids
	// InstanceType is EcsInstance (default) or NetworkInterface.
	InstanceType string
	// Master is the associated instance that last claimed the address
	// (MasterInstanceId).
	Master string
}

// EIP is an elastic public IP.
type EIP struct {
	AllocationID string
	IP           string
	// InstanceID is the associated resource (ECS instance, ENI or HaVip
	// id); InstanceType is EcsInstance, NetworkInterface or HaVip.
	InstanceID   string
	InstanceType string
	// Status is Available or InUse (derived from InstanceID when empty),
	// Associating or Unassociating.
	Status string
	// PrivateIP is the private address the EIP is mapped to (the
	// instance's or ENI's primary IP, or the HaVip's, when empty).
	PrivateIP string
}

// Event types.
const (
	EventHaVipAssociated   = "havip.associated"
	EventHaVipUnassociated = "havip.unassociated"
	EventHaVipMaster       = "havip.master"
	EventHaVipCreated      = "havip.created"
	EventENIDetaching      = "eni.detaching"
	EventENIDetached       = "eni.detached"
	EventENIAttaching      = "eni.attaching"
	EventENIAttached       = "eni.attached"
)

// Event is one state change, for the data plane.
type Event struct {
	Seq  int64
	Time time.Time
	Type string
	// ResourceID is the HaVip, ENI, EIP allocation, DNS record or
	// security group id.
	ResourceID string
	// InstanceID is the instance concerned (new master, attached
	// instance, the ENI's instance for a secondary IP; for an EIP the
	// associated resource id).
	InstanceID string
	// IP is the HaVip address, the ENI's primary IP, the secondary IP
	// (un)assigned, the EIP's private IP, or a DNS record's value.
	IP string
	// Status is the resource's status after the change.
	Status string
	// Name is the DNS record's name (rr.domain); PublicIP the EIP's
	// address; Detail a security group rule (proto port source policy
	// priority).
	Name     string
	PublicIP string
	Detail   string
}

// OnChange registers fn, called (from its own goroutine, in order) for
// every state change after it happened.
func (s *Server) OnChange(fn func(Event)) {
	s.emitMu.Lock()
	defer s.emitMu.Unlock()
	s.handlers = append(s.handlers, fn)
}

// event makes an event; s.mu must be held.
func (s *Server) event(typ, res, inst, ip, status string) Event {
	s.seq++
	return Event{Seq: s.seq, Time: s.now(), Type: typ, ResourceID: res, InstanceID: inst, IP: ip, Status: status}
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

// later runs f after the resource's latency; s.mu must be held. f runs
// with s.mu held and returns the events to emit.
func (s *Server) later(resID string, f func() []Event) {
	d, ok := s.resLat[resID]
	if !ok {
		d = s.latency
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		delete(s.timers, t)
		if s.closed {
			s.mu.Unlock()
			return
		}
		if s.holding[resID] {
			s.held[resID] = append(s.held[resID], f)
			s.mu.Unlock()
			return
		}
		evs := f()
		s.mu.Unlock()
		s.emit(evs)
	})
	s.timers[t] = struct{}{}
}

// AddInstance adds (or replaces) an instance.
func (s *Server) AddInstance(in Instance) error {
	if in.ID == "" {
		return fmt.Errorf("aliyun emulator: instance without id")
	}
	if in.Status == "" {
		in.Status = StatusRunning
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[in.ID] = &in
	return nil
}

// AddENI adds (or replaces) an ENI.
func (s *Server) AddENI(e ENI) error {
	if e.ID == "" {
		return fmt.Errorf("aliyun emulator: ENI without id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.InstanceID != "" {
		if _, ok := s.instances[e.InstanceID]; !ok {
			return fmt.Errorf("aliyun emulator: ENI %s: unknown instance %s", e.ID, e.InstanceID)
		}
	}
	switch e.Type {
	case "":
		e.Type = ENITypeSecondary
	case ENITypePrimary:
		if e.InstanceID == "" {
			return fmt.Errorf("aliyun emulator: primary ENI %s without an instance", e.ID)
		}
	case ENITypeSecondary:
	default:
		return fmt.Errorf("aliyun emulator: ENI %s: type %q", e.ID, e.Type)
	}
	if e.Status == "" {
		e.Status = StatusAvailable
		if e.InstanceID != "" {
			e.Status = StatusInUse
		}
	}
	if e.MAC == "" {
		s.nextID++
		e.MAC = fmt.Sprintf("00:16:3e:00:%02x:%02x", s.nextID>>8&0xff, s.nextID&0xff)
	}
	e.SecondaryIPs = slices.Clone(e.SecondaryIPs)
	s.enis[e.ID] = &e
	return nil
}

// AddHaVip adds (or replaces) a HaVip.
func (s *Server) AddHaVip(h HaVip) error {
	if h.ID == "" || h.IP == "" {
		return fmt.Errorf("aliyun emulator: HaVip needs an id and an address")
	}
	if h.InstanceType == "" {
		h.InstanceType = "EcsInstance"
	}
	h.Instances = slices.Clone(h.Instances)
	if h.Status == "" {
		h.Status = StatusAvailable
		if len(h.Instances) > 0 {
			h.Status = StatusInUse
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.havips[h.ID] = &h
	return nil
}

// AddEIP adds (or replaces) an EIP. An EIP without an allocation id is
// ignored; the association is not checked.
func (s *Server) AddEIP(e EIP) {
	if e.AllocationID == "" {
		return
	}
	if e.InstanceID != "" && e.InstanceType == "" {
		e.InstanceType = EIPTypeEcs
	}
	if e.Status == "" {
		e.Status = StatusAvailable
		if e.InstanceID != "" {
			e.Status = StatusInUse
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.PrivateIP == "" && e.InstanceID != "" {
		e.PrivateIP = s.defaultPrivateIP(e.InstanceID, e.InstanceType)
	}
	s.eips[e.AllocationID] = &e
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
	c.Instances = slices.Clone(h.Instances)
	return c, true
}

// SetHaVipMaster is the data plane's report that instanceID added the
// HaVip's address and announced it with gratuitous ARP. It makes the
// instance the master when it is associated with the HaVip and the HaVip
// is not being (un)associated from it; otherwise it returns an error and
// nothing changes (the vSwitch ignores the claim).
func (s *Server) SetHaVipMaster(havipID, instanceID string) error {
	s.mu.Lock()
	h, ok := s.havips[havipID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("aliyun emulator: HaVip %s not found", havipID)
	}
	if !slices.Contains(h.Instances, instanceID) {
		s.mu.Unlock()
		return fmt.Errorf("aliyun emulator: %s is not associated with HaVip %s: claim ignored", instanceID, havipID)
	}
	if h.Master == instanceID {
		s.mu.Unlock()
		return nil
	}
	h.Master = instanceID
	ev := s.event(EventHaVipMaster, h.ID, instanceID, h.IP, h.Status)
	s.mu.Unlock()
	s.emit([]Event{ev})
	return nil
}

// SetLatency changes the duration of asynchronous transitions.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = max(d, 0)
}

// SetResourceLatency makes the transitions of one resource (ENI or HaVip
// id) take d (a slow transition); d < 0 restores the default.
func (s *Server) SetResourceLatency(id string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d < 0 {
		delete(s.resLat, id)
		return
	}
	s.resLat[id] = d
}

// StickDetaching makes an ENI that is detached stay in Detaching for
// ever (a hung guest), until called again with false, which completes a
// pending detach.
func (s *Server) StickDetaching(eniID string, stuck bool) {
	s.mu.Lock()
	var evs []Event
	s.stuck[eniID] = stuck
	if !stuck {
		delete(s.stuck, eniID)
		if e, ok := s.enis[eniID]; ok && e.Status == StatusDetaching {
			s.finishDetach(e, &evs)
		}
	}
	s.mu.Unlock()
	s.emit(evs)
}

// Fault is an injected error answer.
type Fault struct {
	// Action is the API action it applies to; "" means every action.
	Action string
	// Times is how many calls fail (at least 1).
	Times  int
	Status int
	Code   string
	// Message defaults to a generic text.
	Message string
	// Applied makes the call take effect before the error is answered: a
	// lost answer, after which a retry meets the changed state (e.g.
	// DomainRecordDuplicate, IncorrectEipStatus, InvalidIp.IpUnassigned).
	Applied bool
}

type fault struct{ Fault }

// InjectError makes the next f.Times calls of f.Action fail with f.
func (s *Server) InjectError(f Fault) {
	if f.Times < 1 {
		f.Times = 1
	}
	if f.Status == 0 {
		f.Status = http.StatusBadRequest
	}
	if f.Message == "" {
		f.Message = "Injected fault " + f.Code + "."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{f})
}

// Throttle makes the next n calls of action fail with Throttling.User
// and the given HTTP status (400 as the API usually answers, or 503).
func (s *Server) Throttle(action string, n, status int) {
	if status == 0 {
		status = http.StatusBadRequest
	}
	s.InjectError(Fault{Action: action, Times: n, Status: status, Code: "Throttling.User", Message: "Request was denied due to user flow control."})
}

// ClearFaults removes the injected errors not consumed yet (StickDetaching
// is undone separately).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Calls returns how many authenticated calls of action were received
// (including those answered with an injected error).
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// takeFault consumes a matching fault; s.mu must be held. applied says
// whether the call is to take effect before the error is answered.
func (s *Server) takeFault(action string) (ae *apiError, applied bool) {
	for i, f := range s.faults {
		if f.Action != "" && f.Action != action {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return &apiError{Status: f.Status, Code: f.Code, Message: f.Message}, f.Applied
	}
	return nil, false
}
