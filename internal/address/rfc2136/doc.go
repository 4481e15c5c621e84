// Package rfc2136 moves the clients' address by pointing a DNS A record
// at the new primary with RFC 2136 dynamic updates signed with TSIG
// (RFC 8945), as BIND 9, Knot, PowerDNS and Windows DNS accept them.
//
// Acquire sends one UPDATE without prerequisite that deletes the name's A
// RRset and adds an A record with the new primary's address; the server
// applies the message atomically, so resolvers never see the name empty.
// With verify=yes it then queries the server: the zone's SOA serial must
// have increased and the A RRset must be exactly the new address.
//
// Release does nothing by default (on_release=keep). With
// on_release=delete it deletes the A RRset only while it is exactly the
// old primary's address (prerequisite "RRset exists, value dependent"), so
// a concurrent change is not clobbered.
//
// Holder reads the A RRset and maps it back to a configured server by IP
// (Target.IP, else the server's ip, else its hostname, resolved). Status
// checks that the record points at the primary and that the key may
// update it (an update that changes nothing, see Mover.Status).
//
// # DNS is an extra layer, never the fencing
//
// Resolvers and client libraries cache the answer for up to the TTL (and
// some, like the JVM's default, longer): after Acquire, clients that
// looked the name up before keep connecting to the old primary until
// their cache expires, whatever Release did. on_release=delete does not
// shorten that: it only affects clients that look the name up between
// Release and Acquire, and those then get "no such record", which
// resolvers cache for the zone's negative TTL (the SOA minimum field,
// often longer than the record's TTL) — clients could stay without an
// address after Acquire has run. keep (the default) leaves the old
// address until Acquire replaces it in one atomic update. Either way the
// old primary must be fenced by other means (read_only, shutdown_script,
// a VIP or cloud mover, stopping the instance); use this mover alone only
// where clients re-resolve on every connection and a short TTL is
// acceptable, or as an extra layer on top of another mover
// (NewWithOptions).
//
// # Settings (Address.Options)
//
//	server            host:port of the zone's primary server (required; port
//	                  defaults to 53)
//	zone              the zone updated (required), e.g. example.com
//	name              the record (required): "db" (relative to zone),
//	                  "db.example.com." (absolute), "@" (the apex); a name
//	                  without trailing dot that already ends with zone is
//	                  taken as absolute
//	ttl               TTL of the record in seconds (default 60)
//	tsig_key_name     TSIG key name; optional when tsig_secret_file is a
//	                  key file with one key
//	tsig_algorithm    hmac-sha256 (default), hmac-sha512, hmac-sha384,
//	                  hmac-sha224, hmac-sha1 ("sha512" etc. accepted); must
//	                  match the key file's algorithm when it names one
//	tsig_secret_file  file holding the secret: either the bare base64 secret,
//	                  or BIND key statements as tsig-keygen writes them
//	                  (key "name" { algorithm hmac-sha256; secret "…"; };).
//	                  The secret is never in the configuration and never
//	                  logged or put in an error. Without tsig_secret_file
//	                  messages are unsigned (servers with allow-update by
//	                  address only)
//	transport         tcp (default) | udp (retried up to 3 times, falls back
//	                  to TCP on truncation)
//	timeout           bound of one exchange with the server (default 5s)
//	on_release        keep (default) | delete: see above
//	verify            yes (default) | no: query the server after each change
//
// The server must allow the key to update the name's A records, e.g. in
// BIND: update-policy { grant KEY name db.example.com. A; };
package rfc2136
