package tencent

import (
	"bytes"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"
)

func describeHaVip(t *testing.T, c *vpc.Client, id string) *vpc.HaVip {
	t.Helper()
	req := vpc.NewDescribeHaVipsRequest()
	req.HaVipIds = common.StringPtrs([]string{id})
	out, err := c.DescribeHaVips(req)
	must(t, err)
	if n := len(out.Response.HaVipSet); n != 1 {
		t.Fatalf("DescribeHaVips %s: %d results", id, n)
	}
	return out.Response.HaVipSet[0]
}

func assoc(c *vpc.Client, havip string, ids ...string) error {
	req := vpc.NewAssociateHaVipInstanceRequest()
	for _, id := range ids {
		req.HaVipAssociationSet = append(req.HaVipAssociationSet, &vpc.HaVipAssociation{HaVipId: common.StringPtr(havip), InstanceId: common.StringPtr(id), InstanceType: common.StringPtr(AssocCVM)})
	}
	_, err := c.AssociateHaVipInstance(req)
	return err
}

func TestHaVipWithSDK(t *testing.T) {
	s := startSim(t, Options{})
	var mu sync.Mutex
	var events []Event
	s.OnChange(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	c := client(t, s, testID, testKey)

	h := describeHaVip(t, c, "havip-1")
	if *h.State != StateUnbind || *h.Vip != "198.18.0.200" || !*h.CheckAssociate || *h.NetworkInterfaceId != "" {
		t.Fatalf("fresh HaVip: %s %s %v %q", *h.State, *h.Vip, *h.CheckAssociate, *h.NetworkInterfaceId)
	}
	// CheckAssociate: a claim from outside the drift scope is ignored.
	if err := s.SetHaVipHolder("havip-1", "ins-a"); err == nil {
		t.Fatal("claim outside the drift scope accepted")
	}
	must(t, assoc(c, "havip-1", "ins-a", "ins-b"))
	if err := assoc(c, "havip-1", "ins-a"); code(err) != "InvalidParameterValue.DuplicatedHaVipAssociations" {
		t.Fatalf("duplicate association: %v", err)
	}
	if err := assoc(c, "havip-1", "ins-z"); code(err) != "InvalidParameterValue.ParameterMismatch" {
		t.Fatalf("association from another subnet: %v", err)
	}
	if err := assoc(c, "havip-nope", "ins-a"); code(err) != "ResourceNotFound" {
		t.Fatalf("unknown HaVip: %v", err)
	}
	must(t, s.SetHaVipHolder("havip-1", "ins-a"))
	if err := s.SetHaVipHolder("havip-1", "ins-z"); err == nil {
		t.Fatal("claim from another subnet accepted")
	}
	h = describeHaVip(t, c, "havip-1")
	if *h.State != StateAvailable || *h.InstanceId != "ins-a" || *h.NetworkInterfaceId != "eni-a" || len(h.HaVipAssociationSet) != 2 {
		t.Fatalf("after claim: %s %s %s %d", *h.State, *h.InstanceId, *h.NetworkInterfaceId, len(h.HaVipAssociationSet))
	}
	// Filters.
	req := vpc.NewDescribeHaVipsRequest()
	req.Filters = []*vpc.Filter{{Name: common.StringPtr("vip"), Values: common.StringPtrs([]string{"198.18.0.200"})}}
	out, err := c.DescribeHaVips(req)
	must(t, err)
	if *out.Response.TotalCount != 1 {
		t.Fatalf("filter vip: %d", *out.Response.TotalCount)
	}
	req.HaVipIds = common.StringPtrs([]string{"havip-1"})
	if _, err := c.DescribeHaVips(req); code(err) != "InvalidParameter.Coexist" {
		t.Fatalf("ids and filters: %v", err)
	}
	req = vpc.NewDescribeHaVipsRequest()
	req.Filters = []*vpc.Filter{{Name: common.StringPtr("state"), Values: common.StringPtrs([]string{"x"})}}
	if _, err := c.DescribeHaVips(req); code(err) != "InvalidParameter.FilterInvalidKey" {
		t.Fatalf("unknown filter: %v", err)
	}
	// The holder moves by ARP.
	must(t, s.SetHaVipHolder("havip-1", "ins-b"))
	// Removing the holder from the drift scope unbinds the HaVip.
	dis := vpc.NewDisassociateHaVipInstanceRequest()
	dis.HaVipAssociationSet = []*vpc.HaVipAssociation{{HaVipId: common.StringPtr("havip-1"), InstanceId: common.StringPtr("ins-b"), InstanceType: common.StringPtr(AssocCVM)}}
	_, err = c.DisassociateHaVipInstance(dis)
	must(t, err)
	h = describeHaVip(t, c, "havip-1")
	if *h.State != StateUnbind || *h.InstanceId != "" || len(h.HaVipAssociationSet) != 1 {
		t.Fatalf("after disassociating the holder: %s %q %d", *h.State, *h.InstanceId, len(h.HaVipAssociationSet))
	}
	if _, err = c.DisassociateHaVipInstance(dis); code(err) != "InvalidParameterValue" {
		t.Fatalf("disassociate twice: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, e := range events {
		got = append(got, e.Type+":"+e.InstanceID)
	}
	want := "havip.associated:ins-a havip.associated:ins-b havip.holder:ins-a havip.holder:ins-b havip.disassociated:ins-b havip.unbound:"
	if strings.Join(got, " ") != want {
		t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	if last := events[len(events)-1]; last.From != "eni-b" || last.IP != "198.18.0.200" || last.Status != StateUnbind {
		t.Fatalf("unbound event: %+v", last)
	}
}

func TestCreateHaVipIdempotent(t *testing.T) {
	s := startSim(t, Options{})
	c := client(t, s, testID, testKey)
	mk := func(token, vip string) *vpc.CreateHaVipRequest {
		r := vpc.NewCreateHaVipRequest()
		r.VpcId, r.SubnetId, r.Vip, r.HaVipName, r.ClientToken = common.StringPtr("vpc-1"), common.StringPtr("subnet-1"), common.StringPtr(vip), common.StringPtr("db"), common.StringPtr(token)
		r.CheckAssociate = common.BoolPtr(true)
		r.HaVipAssociationSet = []*vpc.HaVipAssociation{{InstanceId: common.StringPtr("ins-a"), InstanceType: common.StringPtr(AssocCVM)}}
		return r
	}
	a, err := c.CreateHaVip(mk("tok-1", "198.18.0.201"))
	must(t, err)
	b, err := c.CreateHaVip(mk("tok-1", "198.18.0.201"))
	must(t, err)
	if *a.Response.HaVip.HaVipId != *b.Response.HaVip.HaVipId || *a.Response.RequestId != *b.Response.RequestId {
		t.Fatalf("same token, two HaVips: %s %s", *a.Response.HaVip.HaVipId, *b.Response.HaVip.HaVipId)
	}
	if n := len(a.Response.HaVip.HaVipAssociationSet); n != 1 {
		t.Fatalf("associations of the new HaVip: %d", n)
	}
	if _, err := c.CreateHaVip(mk("tok-1", "198.18.0.202")); code(err) != "UnsupportedOperation.IdempotentParameterMismatch" {
		t.Fatalf("same token, other parameters: %v", err)
	}
	if _, err := c.CreateHaVip(mk("tok-2", "198.18.0.201")); code(err) != "InvalidParameterValue.Reserved" {
		t.Fatalf("address in use: %v", err)
	}
	if s.Calls("CreateHaVip") != 4 {
		t.Fatalf("calls = %d", s.Calls("CreateHaVip"))
	}
}

func describeENIs(t *testing.T, c *vpc.Client, filters map[string][]string) []*vpc.NetworkInterface {
	t.Helper()
	req := vpc.NewDescribeNetworkInterfacesRequest()
	for _, k := range slices.Sorted(maps.Keys(filters)) {
		req.Filters = append(req.Filters, &vpc.Filter{Name: common.StringPtr(k), Values: common.StringPtrs(filters[k])})
	}
	out, err := c.DescribeNetworkInterfaces(req)
	must(t, err)
	return out.Response.NetworkInterfaceSet
}

func taskStatus(t *testing.T, c *vpc.Client, id string) string {
	t.Helper()
	req := vpc.NewDescribeVpcTaskResultRequest()
	req.TaskId = common.StringPtr(id)
	out, err := c.DescribeVpcTaskResult(req)
	must(t, err)
	return *out.Response.Status
}

func migrate(c *vpc.Client, src, dst, ip string) (string, error) {
	req := vpc.NewMigratePrivateIpAddressRequest()
	req.SourceNetworkInterfaceId, req.DestinationNetworkInterfaceId, req.PrivateIpAddress = common.StringPtr(src), common.StringPtr(dst), common.StringPtr(ip)
	out, err := c.MigratePrivateIpAddress(req)
	if err != nil {
		return "", err
	}
	return *out.Response.RequestId, nil
}

func TestMigratePrivateIPWithSDK(t *testing.T) {
	s := startSim(t, Options{})
	var mu sync.Mutex
	var events []Event
	s.OnChange(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	c := client(t, s, testID, testKey)

	// Address lookups: one address matches by suffix unless exact.
	if n := len(describeENIs(t, c, map[string][]string{"address-ip": {"0.11"}})); n != 1 {
		t.Fatalf("suffix match: %d", n)
	}
	if n := len(describeENIs(t, c, map[string][]string{"address-ip": {"0.11"}, "ip-exact-match": {"true"}})); n != 0 {
		t.Fatalf("exact match of a suffix: %d", n)
	}
	enis := describeENIs(t, c, map[string][]string{"address-ip": {"198.18.0.100"}, "ip-exact-match": {"true"}})
	if len(enis) != 1 || *enis[0].NetworkInterfaceId != "eni-a" || *enis[0].Attachment.InstanceId != "ins-a" || !*enis[0].Primary || len(enis[0].PrivateIpAddressSet) != 2 {
		t.Fatalf("ENI by secondary IP: %d", len(enis))
	}

	if _, err := migrate(c, "eni-a", "eni-b", "198.18.0.11"); code(err) != "UnsupportedOperation.PrimaryIp" {
		t.Fatalf("primary IP: %v", err)
	}
	if _, err := migrate(c, "eni-a", "eni-z", "198.18.0.100"); code(err) != "InvalidParameterValue.SubnetConflict" {
		t.Fatalf("other subnet: %v", err)
	}
	if _, err := migrate(c, "eni-b", "eni-a", "198.18.0.100"); code(err) != "ResourceNotFound" {
		t.Fatalf("address not on the source: %v", err)
	}
	s.SetResourceLatency("198.18.0.100", 200*time.Millisecond)
	task, err := migrate(c, "eni-a", "eni-b", "198.18.0.100")
	must(t, err)
	if st := taskStatus(t, c, task); st != TaskRunning {
		t.Fatalf("task status = %s", st)
	}
	if got := describeENIs(t, c, map[string][]string{"network-interface-id": {"eni-a"}})[0].PrivateIpAddressSet[1]; *got.State != StateMigrating {
		t.Fatalf("address state = %s", *got.State)
	}
	if _, err := migrate(c, "eni-a", "eni-b", "198.18.0.100"); code(err) != "UnsupportedOperation.MutexOperationTaskRunning" {
		t.Fatalf("concurrent migration: %v", err)
	}
	waitFor(t, "SUCCESS", func() bool { return taskStatus(t, c, task) == TaskSuccess })
	if e, i, _ := s.IPHolder("198.18.0.100"); e != "eni-b" || i != "ins-b" {
		t.Fatalf("address on %s/%s", e, i)
	}
	// A failed migration leaves the address where it was.
	s.FailMigrations("198.18.0.100", 1, "")
	task, err = migrate(c, "eni-b", "eni-a", "198.18.0.100")
	must(t, err)
	waitFor(t, "FAILED", func() bool { return taskStatus(t, c, task) == TaskFailed })
	if e, _, _ := s.IPHolder("198.18.0.100"); e != "eni-b" {
		t.Fatalf("after a failed migration the address is on %s", e)
	}
	if tk, _ := s.GetTask(task); !strings.Contains(tk.Output, "injected") {
		t.Fatalf("task output %q", tk.Output)
	}
	req := vpc.NewDescribeVpcTaskResultRequest()
	req.TaskId = common.StringPtr("nope")
	if _, err := c.DescribeVpcTaskResult(req); code(err) != "ResourceNotFound" {
		t.Fatalf("unknown task: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, e := range events {
		got = append(got, e.Type+":"+e.InstanceID+":"+e.Status)
	}
	want := "privateip.migrating:ins-a:RUNNING privateip.migrated:ins-b:SUCCESS privateip.migrating:ins-b:RUNNING privateip.migration_failed:ins-b:FAILED"
	if strings.Join(got, " ") != want {
		t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
}

func TestAuthAndFaultsWithSDK(t *testing.T) {
	var logs bytes.Buffer
	s := startSim(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	describe := func(c *vpc.Client) error {
		_, err := c.DescribeHaVips(vpc.NewDescribeHaVipsRequest())
		return err
	}
	err := describe(client(t, s, testID, "wrong-"+testKey))
	if code(err) != "AuthFailure.SignatureFailure" || strings.Contains(err.Error(), testKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if err := describe(client(t, s, "AKIDunknown", testKey)); code(err) != "AuthFailure.SecretIdNotFound" {
		t.Fatalf("unknown SecretId: %v", err)
	}
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint, cpf.HttpProfile.Scheme = s.Endpoint(), "HTTP"
	other, err := vpc.NewClient(common.NewCredential(testID, testKey), "ap-shanghai", cpf)
	must(t, err)
	if err := describe(other); code(err) != "UnsupportedRegion" {
		t.Fatalf("other region: %v", err)
	}
	// Temporary credentials: the token must match.
	s.SetCredential("AKIDtmp", "tmp-key")
	s.SetToken("AKIDtmp", "token-1")
	tmp, err := vpc.NewClient(common.NewTokenCredential("AKIDtmp", "tmp-key", "token-2"), DefaultRegion, cpf)
	must(t, err)
	if err := describe(tmp); code(err) != "AuthFailure.TokenFailure" {
		t.Fatalf("wrong token: %v", err)
	}
	tmp, err = vpc.NewClient(common.NewTokenCredential("AKIDtmp", "tmp-key", "token-1"), DefaultRegion, cpf)
	must(t, err)
	must(t, describe(tmp))

	c := client(t, s, testID, testKey)
	s.Throttle("DescribeHaVips", 1)
	if err := describe(c); code(err) != "RequestLimitExceeded" {
		t.Fatalf("throttled: %v", err)
	}
	must(t, describe(c))
	// The SDK's own rate-limit retry understands the emulator's answer.
	s.Throttle("DescribeHaVips", 2)
	retrying := client(t, s, testID, testKey, func(p *profile.ClientProfile) {
		p.RateLimitExceededMaxRetries = 3
		p.RateLimitExceededRetryDuration = profile.ConstantDurationFunc(time.Millisecond)
	})
	must(t, describe(retrying))
	if n := s.Calls("DescribeHaVips"); n != 6 {
		t.Fatalf("calls = %d, want 6", n)
	}
	s.InjectError(Fault{Action: "DescribeHaVips", Code: "InternalError", HTTPStatus: 502})
	if err := describe(c); code(err) != "ClientError.ParseJsonError" {
		t.Fatalf("gateway error: %v", err)
	}
	// An unknown parameter is refused (the SDK never sends one; a raw
	// request does, see raw_test.go), an unknown action too.
	if strings.Contains(logs.String(), testKey) || strings.Contains(logs.String(), "tmp-key") || strings.Contains(logs.String(), "token-1") {
		t.Fatalf("secret in the logs:\n%s", logs.String())
	}
}

func TestClockSkewWithSDK(t *testing.T) {
	// The emulator's clock runs 6 minutes ahead of the SDK's.
	s := startSim(t, Options{Now: func() time.Time { return time.Now().Add(6 * time.Minute) }})
	_, err := client(t, s, testID, testKey).DescribeHaVips(vpc.NewDescribeHaVipsRequest())
	if code(err) != "AuthFailure.SignatureExpire" {
		t.Fatalf("skewed clock: %v", err)
	}
	s2 := startSim(t, Options{Now: func() time.Time { return time.Now().Add(4 * time.Minute) }})
	_, err = client(t, s2, testID, testKey).DescribeHaVips(vpc.NewDescribeHaVipsRequest())
	must(t, err)
}

func TestOtherSignMethodsWithSDK(t *testing.T) {
	s := startSim(t, Options{})
	for _, tc := range []struct{ sign, method string }{
		{AlgTC3, "GET"}, {AlgHmacSHA256, "POST"}, {AlgHmacSHA1, "GET"},
	} {
		c := client(t, s, testID, testKey, func(p *profile.ClientProfile) {
			p.SignMethod = tc.sign
			p.HttpProfile.ReqMethod = tc.method
		})
		enis := describeENIs(t, c, map[string][]string{"address-ip": {"198.18.0.100", "198.18.0.12"}, "is-primary": {"true"}})
		if len(enis) != 2 {
			t.Fatalf("%s %s: %d ENIs", tc.sign, tc.method, len(enis))
		}
		req := vpc.NewAssociateHaVipInstanceRequest()
		req.HaVipAssociationSet = []*vpc.HaVipAssociation{{HaVipId: common.StringPtr("havip-1"), InstanceId: common.StringPtr("eni-b"), InstanceType: common.StringPtr(AssocENI)}}
		if _, err := c.AssociateHaVipInstance(req); err != nil && code(err) != "InvalidParameterValue.DuplicatedHaVipAssociations" {
			t.Fatalf("%s %s: associate: %v", tc.sign, tc.method, err)
		}
		if _, err := client(t, s, testID, "bad", func(p *profile.ClientProfile) {
			p.SignMethod = tc.sign
			p.HttpProfile.ReqMethod = tc.method
		}).DescribeHaVips(vpc.NewDescribeHaVipsRequest()); code(err) != "AuthFailure.SignatureFailure" {
			t.Fatalf("%s %s: wrong key: %v", tc.sign, tc.method, err)
		}
	}
	if h, _ := s.GetHaVip("havip-1"); len(h.Associations) != 1 || h.Associations[0].Type != AssocENI {
		t.Fatalf("associations: %+v", h.Associations)
	}
	must(t, s.SetHaVipHolder("havip-1", "ins-b"))
	if h, _ := s.GetHaVip("havip-1"); h.NetworkInterfaceID != "eni-b" {
		t.Fatalf("holder: %+v", h)
	}
}
