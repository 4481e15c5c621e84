// Package aliyun moves a MySQL primary's private address on Alibaba Cloud.
// Two movers share the settings below:
//
//   - aliyun-havip (KindHaVip): a HaVip associated with every server's
//     instance. The switch is ARP-driven, as with keepalived: Release
//     removes the address from the old primary over SSH, Acquire adds it to
//     the new one and sends gratuitous ARP; the platform then makes the new
//     instance the HaVip's master, which Acquire verifies through
//     DescribeHaVips (MasterInstanceId). No association changes during a
//     failover: missing associations are made (AssociateHaVip, waiting for
//     InUse) by Status and by Acquire.
//   - aliyun-eni (KindENI): a secondary ENI carrying the address.
//     Release detaches it from the old instance and waits for Available;
//     Acquire attaches it to the new one and waits for InUse, re-attaching
//     it to the old instance when that fails (rollback=yes, the default).
//
// # Settings (Address.Options)
//
//	region                  region id (required)
//	endpoint                API endpoint override (the emulator: 127.0.0.1:PORT)
//	havip_id / eni_id       the resource moved (required by its mover)
//	instance_id.<server>    ECS instance id of a server (section name); when
//	                        missing it is discovered once with DescribeInstances
//	                        by the server's private IP (ip, else hostname when it
//	                        is an IP)
//	guest                   ssh (default) | none: the guest-side steps over SSH
//	                        (address add/del + gratuitous ARP for the HaVip, link
//	                        up/down for the ENI); none leaves them to the host
//	                        (cloud-init, keepalived, a test data plane)
//	wait_timeout            bound of each asynchronous wait (default 60s)
//	poll_interval           status polling period (default 500ms)
//	call_timeout            connect+read timeout of one API call (default 10s)
//	retries                 attempts of a throttled or 5xx call (default 6)
//	proxy                   HTTP proxy URL for the API (default: environment)
//	havip: interface (eth0), prefix (32), arping (arping | none), arp_count (3),
//	       associate (yes | no: create missing associations; default yes)
//	eni:   rollback (yes | no), device_prefix (eth): the guest interface is
//	       found by the ENI's MAC address
//
// Credentials come from the credential chain of internal/cloud/aliyun,
// never from these options.
package aliyun
