package aliyun

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	ecs "github.com/alibabacloud-go/ecs-20140526/v7/client"
	vpc "github.com/alibabacloud-go/vpc-20160428/v7/client"
)

func str(s string) *string { return &s }

func sdkConfig(s *Server, ak, secret string) *openapi.Config {
	return &openapi.Config{
		Endpoint: str(s.Endpoint()), Protocol: str("HTTP"), RegionId: str(DefaultRegion),
		AccessKeyId: str(ak), AccessKeySecret: str(secret),
		ConnectTimeout: new(int), ReadTimeout: new(int),
	}
}

func clients(t *testing.T, s *Server, ak, secret string) (*vpc.Client, *ecs.Client) {
	t.Helper()
	v, err := vpc.NewClient(sdkConfig(s, ak, secret))
	must(t, err)
	e, err := ecs.NewClient(sdkConfig(s, ak, secret))
	must(t, err)
	return v, e
}

// code extracts the error code of an SDK error (*tea.SDKError, read by
// reflection to keep this package free of a direct tea import).
func code(err error) string {
	for ; err != nil; err = errors.Unwrap(err) {
		v := reflect.ValueOf(err)
		if v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
			if f := v.Elem().FieldByName("Code"); f.IsValid() && f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.String {
				return f.Elem().String()
			}
		}
	}
	return ""
}

func describeHaVip(t *testing.T, v *vpc.Client, id string) *vpc.DescribeHaVipsResponseBodyHaVipsHaVip {
	t.Helper()
	out, err := v.DescribeHaVips(&vpc.DescribeHaVipsRequest{RegionId: str(DefaultRegion),
		Filter: []*vpc.DescribeHaVipsRequestFilter{{Key: str("HaVipId"), Value: []*string{str(id)}}}})
	must(t, err)
	if n := len(out.Body.HaVips.HaVip); n != 1 {
		t.Fatalf("DescribeHaVips %s: %d results", id, n)
	}
	return out.Body.HaVips.HaVip[0]
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHaVipLifecycleWithSDK(t *testing.T) {
	s := startSim(t, Options{})
	var mu sync.Mutex
	var events []Event
	s.OnChange(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	v, _ := clients(t, s, testAK, testSecret)
	for _, id := range []string{"i-a", "i-b"} {
		_, err := v.AssociateHaVip(&vpc.AssociateHaVipRequest{RegionId: str(DefaultRegion), HaVipId: str("havip-1"), InstanceId: str(id), ClientToken: str("tok-" + id)})
		must(t, err)
		if st := *describeHaVip(t, v, "havip-1").Status; st != StatusAssociating {
			t.Fatalf("status after associate = %s, want Associating", st)
		}
		// Same token, same parameters: the first answer again.
		_, err = v.AssociateHaVip(&vpc.AssociateHaVipRequest{RegionId: str(DefaultRegion), HaVipId: str("havip-1"), InstanceId: str(id), ClientToken: str("tok-" + id)})
		must(t, err)
		waitFor(t, "InUse", func() bool { return *describeHaVip(t, v, "havip-1").Status == StatusInUse })
	}
	// Same token, other parameters.
	_, err := v.AssociateHaVip(&vpc.AssociateHaVipRequest{RegionId: str(DefaultRegion), HaVipId: str("havip-1"), InstanceId: str("i-z"), ClientToken: str("tok-i-a")})
	if code(err) != "IdempotentParameterMismatch" {
		t.Fatalf("token reuse: err = %v", err)
	}
	// Another vSwitch.
	_, err = v.AssociateHaVip(&vpc.AssociateHaVipRequest{RegionId: str(DefaultRegion), HaVipId: str("havip-1"), InstanceId: str("i-z")})
	if code(err) != "InvalidVSwitchId.Mismatch" {
		t.Fatalf("cross-vSwitch associate: err = %v", err)
	}
	h := describeHaVip(t, v, "havip-1")
	if got := len(h.AssociatedInstances.AssociatedInstance); got != 2 || *h.MasterInstanceId != "" {
		t.Fatalf("associated %d, master %q", got, *h.MasterInstanceId)
	}
	must(t, s.SetHaVipMaster("havip-1", "i-a"))
	if err := s.SetHaVipMaster("havip-1", "i-z"); err == nil {
		t.Fatal("claim by an unassociated instance accepted")
	}
	if m := *describeHaVip(t, v, "havip-1").MasterInstanceId; m != "i-a" {
		t.Fatalf("master = %s", m)
	}
	_, err = v.UnassociateHaVip(&vpc.UnassociateHaVipRequest{RegionId: str(DefaultRegion), HaVipId: str("havip-1"), InstanceId: str("i-a")})
	if code(err) != "OperationDenied.HaVipMasterInstance" {
		t.Fatalf("unassociate master without Force: err = %v", err)
	}
	_, err = v.UnassociateHaVip(&vpc.UnassociateHaVipRequest{RegionId: str(DefaultRegion), HaVipId: str("havip-1"), InstanceId: str("i-a"), Force: str("True")})
	must(t, err)
	waitFor(t, "unassociated", func() bool { return *describeHaVip(t, v, "havip-1").Status == StatusInUse })
	h = describeHaVip(t, v, "havip-1")
	if *h.MasterInstanceId != "" || len(h.AssociatedInstances.AssociatedInstance) != 1 {
		t.Fatalf("after unassociate: master %q, instances %v", *h.MasterInstanceId, h.AssociatedInstances.AssociatedInstance)
	}
	c, err := v.CreateHaVip(&vpc.CreateHaVipRequest{RegionId: str(DefaultRegion), VSwitchId: str("vsw-1"), IpAddress: str("198.18.0.201")})
	must(t, err)
	if *c.Body.IpAddress != "198.18.0.201" || !strings.HasPrefix(*c.Body.HaVipId, "havip-") {
		t.Fatalf("CreateHaVip: %+v", c.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	want := "havip.associated havip.associated havip.master havip.unassociated havip.created"
	if strings.Join(types, " ") != want {
		t.Fatalf("events %v, want %s", types, want)
	}
}

func describeENI(t *testing.T, e *ecs.Client, id string) *ecs.DescribeNetworkInterfacesResponseBodyNetworkInterfaceSetsNetworkInterfaceSet {
	t.Helper()
	out, err := e.DescribeNetworkInterfaces(&ecs.DescribeNetworkInterfacesRequest{RegionId: str(DefaultRegion), NetworkInterfaceId: []*string{str(id)}})
	must(t, err)
	if n := len(out.Body.NetworkInterfaceSets.NetworkInterfaceSet); n != 1 {
		t.Fatalf("DescribeNetworkInterfaces %s: %d results", id, n)
	}
	return out.Body.NetworkInterfaceSets.NetworkInterfaceSet[0]
}

func TestENIMoveWithSDK(t *testing.T) {
	s := startSim(t, Options{})
	_, e := clients(t, s, testAK, testSecret)
	_, err := e.AttachNetworkInterface(&ecs.AttachNetworkInterfaceRequest{RegionId: str(DefaultRegion), InstanceId: str("i-b"), NetworkInterfaceId: str("eni-1")})
	if code(err) != "InvalidOperation.InvalidEniState" {
		t.Fatalf("attach of an InUse ENI: %v", err)
	}
	_, err = e.DetachNetworkInterface(&ecs.DetachNetworkInterfaceRequest{RegionId: str(DefaultRegion), InstanceId: str("i-a"), NetworkInterfaceId: str("eni-1")})
	must(t, err)
	if st := *describeENI(t, e, "eni-1").Status; st != StatusDetaching {
		t.Fatalf("status = %s", st)
	}
	waitFor(t, "Available", func() bool { return *describeENI(t, e, "eni-1").Status == StatusAvailable })
	_, err = e.AttachNetworkInterface(&ecs.AttachNetworkInterfaceRequest{RegionId: str(DefaultRegion), InstanceId: str("i-z"), NetworkInterfaceId: str("eni-1")})
	if code(err) != "InvalidOperation.AvailabilityZoneMismatch" {
		t.Fatalf("cross-zone attach: %v", err)
	}
	_, err = e.AttachNetworkInterface(&ecs.AttachNetworkInterfaceRequest{RegionId: str(DefaultRegion), InstanceId: str("i-b"), NetworkInterfaceId: str("eni-1")})
	must(t, err)
	waitFor(t, "InUse", func() bool { return *describeENI(t, e, "eni-1").Status == StatusInUse })
	if got := *describeENI(t, e, "eni-1").InstanceId; got != "i-b" {
		t.Fatalf("attached to %s", got)
	}
	// Stuck in Detaching.
	s.StickDetaching("eni-1", true)
	_, err = e.DetachNetworkInterface(&ecs.DetachNetworkInterfaceRequest{RegionId: str(DefaultRegion), InstanceId: str("i-b"), NetworkInterfaceId: str("eni-1")})
	must(t, err)
	time.Sleep(200 * time.Millisecond)
	if st := *describeENI(t, e, "eni-1").Status; st != StatusDetaching {
		t.Fatalf("stuck ENI: status = %s", st)
	}
	s.StickDetaching("eni-1", false)
	if st := *describeENI(t, e, "eni-1").Status; st != StatusAvailable {
		t.Fatalf("unstuck ENI: status = %s", st)
	}
	in, err := e.DescribeInstances(&ecs.DescribeInstancesRequest{RegionId: str(DefaultRegion), PrivateIpAddresses: str(`["198.18.0.12"]`)})
	must(t, err)
	if n := len(in.Body.Instances.Instance); n != 1 || *in.Body.Instances.Instance[0].InstanceId != "i-b" {
		t.Fatalf("DescribeInstances by IP: %d results", n)
	}
}

func TestAuthErrors(t *testing.T) {
	s := startSim(t, Options{})
	v, _ := clients(t, s, testAK, "wrong-secret")
	_, err := v.DescribeHaVips(&vpc.DescribeHaVipsRequest{RegionId: str(DefaultRegion)})
	if code(err) != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("error shows the secret: %v", err)
	}
	v, _ = clients(t, s, "LTAIunknown", testSecret)
	_, err = v.DescribeHaVips(&vpc.DescribeHaVipsRequest{RegionId: str(DefaultRegion)})
	if code(err) != "InvalidAccessKeyId.NotFound" {
		t.Fatalf("unknown key: %v", err)
	}
	s.Throttle("DescribeHaVips", 1, http.StatusServiceUnavailable)
	v, _ = clients(t, s, testAK, testSecret)
	_, err = v.DescribeHaVips(&vpc.DescribeHaVipsRequest{RegionId: str(DefaultRegion)})
	if code(err) != "Throttling.User" {
		t.Fatalf("throttled: %v", err)
	}
	_, err = v.DescribeHaVips(&vpc.DescribeHaVipsRequest{RegionId: str(DefaultRegion)})
	must(t, err)
}
