// Package aliyun moves a MySQL primary's address on Alibaba Cloud. Five
// movers share the settings below:
//
//   - aliyun-havip (KindHaVip): a HaVip associated with every server's
//     instance. The switch is ARP-driven, as with keepalived: Release
//     removes the address from the old primary over SSH, Acquire adds it to
//     the new one and sends gratuitous ARP; the platform then makes the new
//     instance the HaVip's master, which Acquire verifies through
//     DescribeHaVips (MasterInstanceId). No association changes during a
//     failover: missing associations are made (AssociateHaVip, waiting for
//     InUse) by Status and by Acquire. An EIP bound to the HaVip gives it a
//     public entry that follows the master (eip_allocation_id, eip_bind).
//   - aliyun-eni (KindENI): a secondary ENI carrying the address.
//     Release detaches it from the old instance and waits for Available;
//     Acquire attaches it to the new one and waits for InUse.
//   - aliyun-secondary-ip (KindSecondaryIP): a secondary private IP on the
//     servers' (primary) ENIs: UnassignPrivateIpAddresses from the old,
//     AssignPrivateIpAddresses to the new (no atomic reassignment on
//     Alibaba Cloud), the guest adding the address and sending gratuitous
//     ARP over SSH.
//   - aliyun-eip (KindEIP): a public EIP: UnassociateEipAddress from the
//     old primary's instance (or secondary ENI), AssociateEipAddress to the
//     new one's.
//   - alidns (KindDNS): an Alidns A record pointed at the primary, as an
//     extra layer or, where clients can wait for DNS caches, the only one.
//
// Every asynchronous transition is awaited with a deadline (wait_timeout),
// throttled and transient API errors are retried with backoff (each retry
// is a new, freshly signed request). When Acquire fails in a planned
// switchover (Change.Online) the address is put back on the old primary;
// in a failover the old primary is presumed dead, nothing is undone, and
// the error says exactly where the address was left.
//
// # Settings (Address.Options)
//
//	region                  region id (required; alidns: any, default cn-hangzhou)
//	endpoint                API endpoint override (the emulator: 127.0.0.1:PORT)
//	havip_id / eni_id       the resource moved (required by its mover)
//	instance_id.<server>    ECS instance id of a server (section name); when
//	                        missing it is discovered once with DescribeInstances
//	                        by the server's private IP (ip, else hostname when it
//	                        is an IP)
//	guest                   ssh (default) | none: the guest-side steps over SSH
//	                        (address add/del + gratuitous ARP for the HaVip and
//	                        the secondary IP, link up/down for the ENI); none
//	                        leaves them to the host (cloud-init, keepalived, a
//	                        test data plane). Not for aliyun-eip and alidns.
//	wait_timeout            bound of each asynchronous wait (default 60s)
//	poll_interval           status polling period (default 500ms)
//	call_timeout            connect+read timeout of one API call (default 10s)
//	retries                 attempts of a throttled or 5xx call (default 6)
//	proxy                   HTTP proxy URL for the API (default: environment)
//	havip: interface (eth0), prefix (32), arping (arping | none), arp_count (3),
//	       associate (yes | no: create missing associations; default yes),
//	       eip_allocation_id (an EIP that must stay bound to the HaVip),
//	       eip_bind (yes | no, default no: bind it in Status when unbound)
//	eni:   rollback (yes | no, default yes: re-attach to the old primary when
//	       Acquire fails in a switchover); the guest interface is found
//	       by the ENI's MAC address; policy_routing (yes | no, default
//	       yes: answer from the ENI's address through the ENI, rule +
//	       table policy_table, default 1001)
//	secondary-ip: vip (required, or the address section's vip),
//	       eni_id.<server> (default: the instance's primary ENI), interface
//	       (eth0), prefix (32), arping (arping | none), arp_count (3)
//	eip:   allocation_id (eip-…) or public_ip (one required), bind_to
//	       (instance | eni; eni needs eni_id.<server> for every server),
//	       private_ip (the private address the EIP maps to)
//	alidns: domain, rr (required), type (A), ttl (600), min_ttl (600),
//	       on_release (delete | keep), ip.<server> (the record value)
//
// Credentials come from the credential chain of internal/cloud/aliyun,
// never from these options.
package aliyun
