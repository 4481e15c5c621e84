package aliyun

import (
	"testing"
	"time"
)

const (
	testAK     = "LTAI5tTestKeyId"
	testSecret = "test-secret-0123456789"
)

func startSim(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Credentials == nil {
		o.Credentials = map[string]string{testAK: testSecret}
	}
	if o.Latency == 0 {
		o.Latency = 50 * time.Millisecond
	}
	s := New(o)
	if _, err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	must(t, s.AddInstance(Instance{ID: "i-a", PrivateIP: "198.18.0.11", ZoneID: "cn-hangzhou-k", VSwitchID: "vsw-1", VpcID: "vpc-1"}))
	must(t, s.AddInstance(Instance{ID: "i-b", PrivateIP: "198.18.0.12", ZoneID: "cn-hangzhou-k", VSwitchID: "vsw-1", VpcID: "vpc-1"}))
	must(t, s.AddInstance(Instance{ID: "i-z", PrivateIP: "198.18.0.13", ZoneID: "cn-hangzhou-j", VSwitchID: "vsw-2", VpcID: "vpc-1"}))
	must(t, s.AddENI(ENI{ID: "eni-1", InstanceID: "i-a", PrimaryIP: "198.18.0.100", ZoneID: "cn-hangzhou-k", VSwitchID: "vsw-1", VpcID: "vpc-1"}))
	must(t, s.AddHaVip(HaVip{ID: "havip-1", IP: "198.18.0.200", VSwitchID: "vsw-1", VpcID: "vpc-1"}))
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
