// Package deploy holds what operators install next to cloudmha: the
// Prometheus recording and alert rules (prometheus/), their promtool unit
// tests (prometheus/tests/), an example Alertmanager configuration
// (alertmanager/) and the Grafana dashboard (grafana/). It has no Go code;
// its tests keep those files valid and in step with docs/metrics.md.
package deploy
