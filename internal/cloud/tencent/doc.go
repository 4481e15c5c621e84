// Package tencent builds the official Tencent Cloud VPC (2017-03-12) SDK
// client (github.com/tencentcloud/tencentcloud-sdk-go, v1.3.83) for
// cloudmha's address movers.
//
// Credentials come only from a credential chain built with the SDK's
// common.NewProviderChain, in the order of its DefaultProviderChain:
//
//  1. the environment: TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY
//     (the SDK's EnvProvider), plus TENCENTCLOUD_SESSION_TOKEN for
//     temporary keys, which the SDK's provider does not read;
//  2. the profile file: TENCENTCLOUD_CREDENTIALS_FILE, else
//     ~/.tencentcloud/credentials, section [default], secret_id and
//     secret_key (the SDK's ProfileProvider);
//  3. the CAM role bound to the CVM, through instance metadata
//     (cam/security-credentials/), with temporary keys refreshed five
//     minutes before they expire. This provider replaces the SDK's
//     CvmRoleProvider, whose metadata requests have no timeout and a fixed
//     address: here each request is bounded (2 s), never goes through a
//     proxy, and the address can be changed (tests) or the step disabled.
//
// or from a common.CredentialIface the caller builds; never from the
// cluster configuration in clear. The chain is resolved on first use
// (Client.Credentials), not by New, so that building a mover does no
// network I/O. Secrets are never logged: logs name the SecretId's first
// characters and the provider only, and errors never contain a key or a
// token.
//
// The endpoint override points the client at a local emulator
// (internal/cloudsim/tencent): "127.0.0.1:PORT" (plain HTTP for a
// loopback host without a scheme) or "http://127.0.0.1:PORT"; plain HTTP
// is refused for any other host. HTTPS_PROXY / HTTP_PROXY / NO_PROXY (or
// Config.Proxy) are honoured, except for a loopback endpoint, which is
// always reached directly. The SDK's own retries and region breaker are
// off: callers retry with their own backoff and deadline (IsRetryable).
package tencent
