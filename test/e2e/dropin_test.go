package e2e

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cloudmha/cloudmha/test/testbed"
)

// TestDropinMasterIPFailover: `cloudmha master-ip-failover`, called as MHA
// calls master_ip_failover_script (no --conf, the vip mover from flags),
// moves the VIP from db1 to db2.
func TestDropinMasterIPFailover(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 2, SemiSync: true})
	db1, db2 := b.Host("db1"), b.Host("db2")
	if got := vipHolders(t, b); !reflect.DeepEqual(got, []string{"db1"}) {
		t.Fatalf("VIP at start on %v, want db1", got)
	}
	mover := []string{"--mover=vip", "--vip=" + b.VIP, "--vip_interface=eth0", "--vip_prefix=24",
		"--ssh_options=-i " + b.SSHKey + " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
	orig := []string{"--ssh_user=root", "--orig_master_host=" + db1.IP, "--orig_master_ip=" + db1.IP, "--orig_master_port=3306"}
	call := func(args ...string) result {
		t.Helper()
		r := cloudmha(t, b, "", append(append([]string{"master-ip-failover"}, args...), mover...)...)
		if strings.Contains(r.stdout+r.stderr, b.Password) {
			t.Errorf("the MySQL password leaked:\n%s\n%s", r.stdout, r.stderr)
		}
		return r
	}

	if r := call(append([]string{"--command=status"}, orig...)...); r.code != 0 {
		t.Fatalf("status: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := call(append(orig, "--command=stopssh")...); r.code != 0 {
		t.Fatalf("stopssh: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := vipHolders(t, b); len(got) != 0 {
		t.Fatalf("VIP after stopssh on %v, want nowhere", got)
	}
	start := append([]string{"--command=start"}, orig...)
	start = append(start, "--new_master_host="+db2.IP, "--new_master_ip="+db2.IP, "--new_master_port=3306",
		"--new_master_user="+b.User, "--new_master_password="+b.Password)
	r := call(start...)
	if r.code != 0 {
		t.Fatalf("start: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("start took %s:\n%s", r.elapsed, r.stdout)
	if got := vipHolders(t, b); !reflect.DeepEqual(got, []string{"db2"}) {
		t.Fatalf("VIP after start on %v, want db2", got)
	}
	// status for the new primary now succeeds, for the old one fails (1).
	if r := call("--command=status", "--ssh_user=root", "--orig_master_host="+db2.IP, "--orig_master_ip="+db2.IP, "--orig_master_port=3306",
		"--new_master_host="+db1.IP); r.code != 0 {
		t.Errorf("status on the new primary: exit %d\n%s", r.code, r.stderr)
	}
	if r := call(append([]string{"--command=status", "--new_master_host=" + db2.IP}, orig...)...); r.code != 1 || !strings.Contains(r.stderr, "held by") {
		t.Errorf("status on the old primary: exit %d, want 1 with a reason\n%s", r.code, r.stderr)
	}
}
