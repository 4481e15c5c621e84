// Package aliyun builds Alibaba Cloud SDK clients (the official Darabonba
// VPC 2016-04-28, ECS 2014-05-26 and Alidns 2015-01-09 modules) for
// cloudmha's address movers.
//
// Credentials come only from the official chain of
// github.com/aliyun/credentials-go (environment
// ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / _SECURITY_TOKEN, OIDC, the CLI
// profile, the credentials file, the ECS RAM role through instance metadata,
// ALIBABA_CLOUD_CREDENTIALS_URI), or from a credentials.Credential the
// caller builds; never from the cluster configuration in clear. Secrets are
// never logged: logs name the access key id's first characters and the
// provider only.
//
// Endpoint overrides point the clients at a local emulator
// (internal/cloudsim/aliyun): "127.0.0.1:PORT" (plain HTTP for a loopback
// host without a scheme) or "http://127.0.0.1:PORT"; plain HTTP is refused
// for any other host. HTTP(S)_PROXY and
// NO_PROXY are honoured, except for a loopback endpoint, which is always
// reached directly.
package aliyun
