package tencent

import (
	"errors"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"
)

const (
	testID  = "AKIDsimTestSecretId0001"
	testKey = "sim-secret-key-NEVER-LOGGED-0123"
)

// startSim starts an emulator with two instances in subnet-1 (ins-a,
// ins-b), one in subnet-2 (ins-z), a secondary private IP on ins-a's
// primary ENI and a HaVip in subnet-1.
func startSim(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Credentials == nil {
		o.Credentials = map[string]string{testID: testKey}
	}
	if o.Latency == 0 {
		o.Latency = 50 * time.Millisecond
	}
	s := New(o)
	if _, err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	must(t, s.AddInstance(Instance{ID: "ins-a", PrivateIP: "198.18.0.11", SubnetID: "subnet-1", VpcID: "vpc-1", Zone: "ap-guangzhou-3"}))
	must(t, s.AddInstance(Instance{ID: "ins-b", PrivateIP: "198.18.0.12", SubnetID: "subnet-1", VpcID: "vpc-1", Zone: "ap-guangzhou-3"}))
	must(t, s.AddInstance(Instance{ID: "ins-z", PrivateIP: "198.18.1.13", SubnetID: "subnet-2", VpcID: "vpc-1", Zone: "ap-guangzhou-4"}))
	must(t, s.AddPrivateIP("eni-a", "198.18.0.100"))
	must(t, s.AddHaVip(HaVip{ID: "havip-1", Vip: "198.18.0.200", SubnetID: "subnet-1", VpcID: "vpc-1", CheckAssociate: true}))
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// client is an unmodified SDK client pointed at the emulator.
func client(t *testing.T, s *Server, id, key string, tune ...func(*profile.ClientProfile)) *vpc.Client {
	t.Helper()
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = s.Endpoint()
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.HttpProfile.ReqTimeout = 5
	cpf.Language = "en-US"
	for _, f := range tune {
		f(cpf)
	}
	c, err := vpc.NewClient(common.NewCredential(id, key), DefaultRegion, cpf)
	must(t, err)
	return c
}

// code is the API error code of an SDK error.
func code(err error) string {
	var e *tcerr.TencentCloudSDKError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
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
