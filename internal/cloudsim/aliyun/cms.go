package aliyun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// VersionCMS is CloudMonitor's API version: its custom metrics
// (PutCustomMetric) are served on the same port as the other products.
const VersionCMS = "2019-01-01"

// CloudMonitor limits as documented for PutCustomMetric.
const (
	// MaxCustomMetricsPerCall is the largest MetricList (MetricList.N,
	// N = 1..21).
	MaxCustomMetricsPerCall = 21
	// MaxDimensionLen bounds a dimension's key and value; longer ones are
	// cut, as the service does.
	MaxDimensionLen = 64
	// maxStoredCustomMetrics bounds what the emulator keeps (oldest
	// dropped first).
	maxStoredCustomMetrics = 100_000
)

// CustomMetric is one data point received by PutCustomMetric.
type CustomMetric struct {
	GroupID    string
	MetricName string
	// Dimensions as received (keys and values cut to 64 characters);
	// DimensionKeys keeps the order they were sent in.
	Dimensions    map[string]string
	DimensionKeys []string
	// Type is 0 (a raw value: Values["value"]) or 1 (aggregates over
	// Period seconds: Values holds e.g. Sum, Maximum, SampleCount).
	Type   int
	Period int
	Values map[string]float64
	// Time is the point's time (the call's time when Time was not sent).
	Time time.Time
	// Received is when the emulator stored it.
	Received time.Time
}

// CustomMetrics returns copies of the stored custom metric points, in the
// order received.
func (s *Server) CustomMetrics() []CustomMetric {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CustomMetric, 0, len(s.customMetrics))
	for _, m := range s.customMetrics {
		c := m
		c.Dimensions = make(map[string]string, len(m.Dimensions))
		for k, v := range m.Dimensions {
			c.Dimensions[k] = v
		}
		c.DimensionKeys = slices.Clone(m.DimensionKeys)
		c.Values = make(map[string]float64, len(m.Values))
		for k, v := range m.Values {
			c.Values[k] = v
		}
		out = append(out, c)
	}
	return out
}

// putCustomMetric validates the whole MetricList first and stores all of
// it or nothing. The list comes flattened (MetricList.N.Field, as the
// Darabonba SDKs send it) or as one JSON array in MetricList (the older
// SDKs).
func (s *Server) putCustomMetric(p url.Values) (map[string]any, []Event, *apiError) {
	items, ae := customMetricItems(p)
	if ae != nil {
		return nil, nil, ae
	}
	now := s.now()
	points := make([]CustomMetric, 0, len(items))
	for i, it := range items {
		m, ae := parseCustomMetric(fmt.Sprintf("MetricList.%d.", i+1), it, now)
		if ae != nil {
			return nil, nil, ae
		}
		points = append(points, m)
	}
	s.customMetrics = append(s.customMetrics, points...)
	if n := len(s.customMetrics) - maxStoredCustomMetrics; n > 0 {
		s.customMetrics = slices.Delete(s.customMetrics, 0, n)
	}
	return map[string]any{"Code": "200", "Message": ""}, nil, nil
}

// customMetricItems returns the MetricList items as field -> value maps.
func customMetricItems(p url.Values) ([]map[string]string, *apiError) {
	if v := strings.TrimSpace(p.Get("MetricList")); v != "" {
		var raw []map[string]any
		if err := json.Unmarshal([]byte(v), &raw); err != nil {
			return nil, errBadRequest("InvalidParameter", "MetricList is not a JSON array of objects: "+err.Error())
		}
		if ae := checkMetricCount(len(raw)); ae != nil {
			return nil, ae
		}
		out := make([]map[string]string, len(raw))
		for i, r := range raw {
			out[i] = map[string]string{}
			for k, x := range r {
				switch t := x.(type) {
				case string:
					out[i][k] = t
				case float64:
					out[i][k] = strconv.FormatFloat(t, 'f', -1, 64)
				default: // Values and Dimensions may be objects here
					b, _ := json.Marshal(t)
					out[i][k] = string(b)
				}
			}
		}
		return out, nil
	}
	byIndex := map[int]map[string]string{}
	for k, vs := range p {
		rest, ok := strings.CutPrefix(k, "MetricList.")
		if !ok {
			continue
		}
		n, field, ok := strings.Cut(rest, ".")
		idx, err := strconv.Atoi(n)
		if !ok || err != nil || idx < 1 {
			return nil, errBadRequest("InvalidParameter", "The parameter "+k+" is not valid: want MetricList.N.Field with N from 1.")
		}
		if idx > MaxCustomMetricsPerCall {
			return nil, checkMetricCount(idx)
		}
		if byIndex[idx] == nil {
			byIndex[idx] = map[string]string{}
		}
		byIndex[idx][field] = vs[0]
	}
	if len(byIndex) == 0 {
		return nil, missing("MetricList")
	}
	idxs := make([]int, 0, len(byIndex))
	for i := range byIndex {
		idxs = append(idxs, i)
	}
	sort.Ints(idxs)
	out := make([]map[string]string, 0, len(idxs))
	for _, i := range idxs {
		out = append(out, byIndex[i])
	}
	return out, nil
}

func checkMetricCount(n int) *apiError {
	if n == 0 {
		return missing("MetricList")
	}
	if n > MaxCustomMetricsPerCall {
		return errBadRequest("InvalidParameter", fmt.Sprintf("MetricList holds at most %d items (got %d).", MaxCustomMetricsPerCall, n))
	}
	return nil
}

// parseCustomMetric validates one item; prefix names its fields in
// errors ("MetricList.3.").
func parseCustomMetric(prefix string, f map[string]string, now time.Time) (CustomMetric, *apiError) {
	m := CustomMetric{Received: now, Time: now}
	for _, k := range []string{"GroupId", "MetricName", "Type", "Values", "Dimensions"} {
		if f[k] == "" {
			return m, missing(prefix + k)
		}
	}
	invalid := func(field, why string) *apiError {
		return errBadRequest("InvalidParameter", "The parameter "+prefix+field+" is not valid: "+why)
	}
	m.GroupID = f["GroupId"]
	if strings.Trim(m.GroupID, "0123456789") != "" {
		return m, invalid("GroupId", "want the numeric id of an application group (0 for none).")
	}
	m.MetricName = f["MetricName"]
	if len(m.MetricName) > 128 || strings.Trim(m.MetricName, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
		return m, invalid("MetricName", "want 1 to 128 letters, digits, '_', '.' or '-'.")
	}
	switch f["Type"] {
	case "0":
		m.Type = 0
	case "1":
		m.Type = 1
		period, err := strconv.Atoi(f["Period"])
		if err != nil || (period != 60 && period != 300) {
			return m, invalid("Period", "aggregated data (Type 1) needs Period 60 or 300.")
		}
		m.Period = period
	default:
		return m, invalid("Type", "want 0 (raw data) or 1 (aggregated data).")
	}
	if err := json.Unmarshal([]byte(f["Values"]), &m.Values); err != nil || len(m.Values) == 0 {
		return m, invalid("Values", "want a JSON object of numbers, e.g. {\"value\":10.5}.")
	}
	for k, v := range m.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return m, invalid("Values", "value of "+k+" is not a finite number.")
		}
	}
	if _, ok := m.Values["value"]; m.Type == 0 && !ok {
		return m, invalid("Values", "raw data (Type 0) must have the key \"value\".")
	}
	keys, dims, why := orderedDimensions(f["Dimensions"])
	if why != "" {
		return m, invalid("Dimensions", why)
	}
	m.DimensionKeys, m.Dimensions = keys, dims
	if t := f["Time"]; t != "" {
		ts, ok := parseMetricTime(t)
		if !ok {
			return m, invalid("Time", "want a Unix time in milliseconds or YYYY-MM-DDThh:mm:ssZ.")
		}
		m.Time = ts
	}
	return m, nil
}

// orderedDimensions parses the Dimensions JSON object keeping the keys'
// order; keys and values must be 1 to 64 letters, digits, '.', '-', '_',
// '/' or '\' (longer ones are cut to 64).
func orderedDimensions(v string) ([]string, map[string]string, string) {
	const want = "want a JSON object of strings, e.g. {\"instance\":\"db1\"}"
	d := json.NewDecoder(bytes.NewReader([]byte(v)))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, want + "."
	}
	keys := []string{}
	dims := map[string]string{}
	for d.More() {
		kt, err := d.Token()
		if err != nil {
			return nil, nil, want + "."
		}
		var val string
		if err := d.Decode(&val); err != nil {
			return nil, nil, want + "."
		}
		k := kt.(string)
		for _, s := range []string{k, val} {
			if s == "" || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_/\\") != "" {
				return nil, nil, fmt.Sprintf("dimension %q=%q: keys and values must be 1 to 64 letters, digits, '.', '-', '_', '/' or '\\'.", k, val)
			}
		}
		k, val = cut(k, MaxDimensionLen), cut(val, MaxDimensionLen)
		if _, dup := dims[k]; dup {
			return nil, nil, fmt.Sprintf("dimension %q is given twice.", k)
		}
		keys = append(keys, k)
		dims[k] = val
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return nil, nil, want + "."
	}
	return keys, dims, ""
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseMetricTime accepts a Unix time in milliseconds, or a UTC time
// such as 2017-10-12T13:24:56Z or 20171012T132456.888+0800.
func parseMetricTime(v string) (time.Time, bool) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms), true
	}
	for _, layout := range []string{time.RFC3339Nano, "20060102T150405.000-0700", "20060102T150405-0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
