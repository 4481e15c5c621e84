// Package tencent moves a MySQL primary's private address on Tencent
// Cloud (VPC API 2017-03-12, official Go SDK). Two movers share the
// settings below; New dispatches on cfg.Address.Mover.
//
//   - tencent-havip (KindHaVip): a HaVip in the servers' subnet. The switch
//     is ARP-driven, as with keepalived: Release removes the address from
//     the old primary over SSH, Acquire adds it to the new one and sends
//     gratuitous ARP (arping -U, then -A); the platform then binds the
//     HaVip to the new primary's ENI, which Acquire verifies through
//     DescribeHaVips (NetworkInterfaceId / InstanceId) before its deadline.
//     No API call binds or unbinds a HaVip. When the HaVip checks its
//     drift scope (CheckAssociate), Status and Acquire add missing servers
//     to it (AssociateHaVipInstance, associate=yes) and Release removes
//     the old primary from it (DisassociateHaVipInstance,
//     disassociate_old=yes), so that a fenced-off old primary cannot claim
//     the address back.
//   - tencent-private-ip (KindPrivateIP): a secondary private IP moved
//     between the servers' ENIs with MigratePrivateIpAddress (one subnet;
//     an asynchronous task followed with DescribeVpcTaskResult until
//     SUCCESS or FAILED). Release removes the address from the old guest
//     over SSH and migrates it to the new primary's ENI; Acquire migrates
//     it if Release did not, adds it on the new guest with gratuitous ARP,
//     and checks DescribeNetworkInterfaces.
//
// When Acquire fails during a planned switchover (Change.Online), the
// address is moved back to the old primary; in a failover (the old primary
// may be dead) it is left where it is. Either way the error says where
// the address is. Status (address.StatusChecker) checks the credentials,
// the resources, the subnets and that the primary holds the address;
// Holder maps the holder back to a server name.
//
// Servers are mapped to ENIs by their private IP (the server's ip, else
// its hostname when that is an address): the ENI whose primary private IP
// it is, found once with DescribeNetworkInterfaces (address-ip,
// ip-exact-match). eni.<server> names the ENI instead.
//
// # Settings (Address.Options)
//
//	region          region id (required), e.g. ap-guangzhou
//	endpoint        API endpoint override (the emulator: 127.0.0.1:PORT);
//	                default the SDK's vpc.tencentcloudapi.com
//	proxy           HTTP proxy URL for the API (default: HTTPS_PROXY etc.)
//	cvm_role        yes (default) | no: the CVM role in the credential chain
//	havip_id        tencent-havip: the HaVip (havip-…); or
//	vip             tencent-havip: the HaVip's address (looked up once);
//	                tencent-private-ip: the secondary private IP (required)
//	eni.<server>    the ENI of a server (section name), instead of the lookup
//	guest           ssh (default) | none: the guest-side steps over SSH
//	                (address add/del + gratuitous ARP); none leaves them to
//	                the host (keepalived, a test data plane)
//	interface       auto (default: the ENI's device, found by MAC) | a device
//	prefix          prefix length of the address on the guest (32)
//	arping          arping (default) | none; arp_count (3)
//	wait_timeout    bound of each asynchronous wait (60s)
//	poll_interval   polling period (500ms)
//	call_timeout    timeout of one API call (10s)
//	retries         attempts of a throttled or failed-in-transit call (6),
//	                with jittered exponential backoff from 200 ms to 5 s
//	associate       tencent-havip: yes (default) | no: add missing servers
//	                to a checked drift scope
//	disassociate_old tencent-havip: yes (default) | no: on Release, remove
//	                the old primary from a checked drift scope
//
// Unknown options are errors that name them. Credentials come from the
// credential chain of internal/cloud/tencent (environment
// TENCENTCLOUD_SECRET_ID / _SECRET_KEY / _SESSION_TOKEN, the profile file,
// the CVM role), never from these options; neither a key nor a token is
// ever logged or put in an error.
package tencent
