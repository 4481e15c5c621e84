package observe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

func TestTransportSeesEveryRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			http.Error(w, "throttled", http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	type call struct {
		api string
		ok  bool
	}
	var mu sync.Mutex
	var got []call
	f := func(api string, err error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, call{api, err == nil})
	}
	c := &http.Client{Transport: Transport(nil, f)}
	req := func(url string, hdr map[string]string) {
		r, _ := http.NewRequest("POST", url, nil)
		for k, v := range hdr {
			r.Header[k] = []string{v} // as the SDKs do: not always canonical
		}
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	req(srv.URL+"/?Action=AssociateHaVip", nil)
	req(srv.URL+"/", map[string]string{"x-acs-action": "AttachNetworkInterface"})
	req(srv.URL+"/?fail=1", map[string]string{"X-TC-Action": "AssignPrivateIpAddresses"})
	req(srv.URL+"/", nil)
	// A V1 RPC call sent as a form: the body reaches the server intact.
	var seen string
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		seen = r.PostForm.Get("Action") + "/" + r.PostForm.Get("HaVipId")
	})
	resp, err := c.PostForm(srv.URL+"/", map[string][]string{"Action": {"UnassociateHaVip"}, "HaVipId": {"havip-1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seen != "UnassociateHaVip/havip-1" {
		t.Errorf("the server saw %q", seen)
	}
	want := []call{{"AssociateHaVip", true}, {"AttachNetworkInterface", true}, {"AssignPrivateIpAddresses", false}, {"unknown", true}, {"UnassociateHaVip", true}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if Transport(http.DefaultTransport, nil) != http.DefaultTransport {
		t.Error("a nil Func must leave the transport alone")
	}
}

func TestActionFromAWSContext(t *testing.T) {
	ctx := middleware.WithStackValue(context.Background(), struct{}{}, nil)
	ctx = awsmiddleware.SetOperationName(ctx, "AssociateAddress")
	r, _ := http.NewRequestWithContext(ctx, "POST", "http://127.0.0.1/", nil)
	if a := Action(r); a != "AssociateAddress" {
		t.Fatalf("action %q", a)
	}
}
