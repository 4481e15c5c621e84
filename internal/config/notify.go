package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of the notifier options every kind accepts.
const (
	minNotifyTimeout = 100 * time.Millisecond
	maxNotifyTimeout = 5 * time.Minute
	maxNotifyRetries = 20
	maxNotifyQueue   = 100000
)

// notifierOption is one key of a notifier's options: check returns "" for
// a good value, else the problem.
type notifierOption struct {
	name  string
	check func(v string) string
}

func commonNotifierOptions() []notifierOption {
	return []notifierOption{
		{"timeout", checkNotifyDuration},
		{"retries", checkNotifyInt(0, maxNotifyRetries)},
		{"queue_size", checkNotifyInt(1, maxNotifyQueue)},
	}
}

// notifierOptions returns the options a kind accepts (nil for an unknown
// kind).
func notifierOptions(kind string) []notifierOption {
	var own []notifierOption
	switch kind {
	case NotifyWebhook, NotifySlack, NotifyWeCom, NotifyFeishu:
	case NotifyDingTalk:
		own = []notifierOption{{"at_mobiles", checkNotifyList}, {"at_all", checkNotifyBool}}
	case NotifyEmail:
		own = []notifierOption{
			{"from", checkNotifyAddress},
			{"user", checkNotifyNonEmpty},
			{"tls", checkNotifyEnum("starttls", "none")},
			{"auth", checkNotifyEnum("auto", "plain", "login")},
			{"ca_file", checkNotifyNonEmpty},
		}
	default:
		return nil
	}
	return append(own, commonNotifierOptions()...)
}

// ParseNotifyDuration parses a notifier duration option: a Go duration
// ("500ms", "5s") or whole seconds ("5").
func ParseNotifyDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("must be a duration like \"5s\" or whole seconds (got %s)", quoteVal(v))
	}
	return d, nil
}

// ParseNotifyBool parses a notifier boolean option (true/false, yes/no,
// on/off, 1/0).
func ParseNotifyBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("must be true or false (got %s)", quoteVal(v))
}

// SplitNotifyList splits a list option (a YAML list or a comma-separated
// string), dropping empty items.
func SplitNotifyList(v string) []string {
	var out []string
	for it := range strings.SplitSeq(v, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

func checkNotifyDuration(v string) string {
	d, err := ParseNotifyDuration(v)
	switch {
	case err != nil:
		return err.Error()
	case d < minNotifyTimeout || d > maxNotifyTimeout:
		return fmt.Sprintf("must be between %s and %s (got %s)", minNotifyTimeout, maxNotifyTimeout, d)
	}
	return ""
}

func checkNotifyInt(lo, hi int) func(string) string {
	return func(v string) string {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			return fmt.Sprintf("must be an integer (got %s)", quoteVal(v))
		case n < lo || n > hi:
			return fmt.Sprintf("must be between %d and %d (got %d)", lo, hi, n)
		}
		return ""
	}
}

func checkNotifyBool(v string) string {
	if _, err := ParseNotifyBool(v); err != nil {
		return err.Error()
	}
	return ""
}

func checkNotifyList(v string) string {
	if len(SplitNotifyList(v)) == 0 {
		return "must not be empty"
	}
	return ""
}

func checkNotifyNonEmpty(v string) string {
	if v == "" {
		return "must not be empty"
	}
	return ""
}

func checkNotifyAddress(v string) string {
	if _, err := mail.ParseAddress(v); err != nil {
		return fmt.Sprintf("not an e-mail address: %s", quoteVal(v))
	}
	return ""
}

func checkNotifyEnum(values ...string) func(string) string {
	return func(v string) string {
		if slices.Contains(values, v) {
			return ""
		}
		return fmt.Sprintf("must be one of %s (got %s)", strings.Join(values, ", "), quoteVal(v))
	}
}

// validateNotify checks the notifiers and the contact groups.
func validateNotify(c *Config, loc locator, errs *errList) {
	names := NotifierNames(c.Notify)
	seen := map[string]int{}
	for i, n := range c.Notify {
		validateNotifier(i, n, loc, errs)
		switch name := names[i]; {
		case n.Name != "" && !validAppName(n.Name):
			report(errs, "must be letters, digits, '.', '_' or '-' (got %s)", quoteVal(n.Name))(loc.notify(i, "name"))
		default:
			if j, dup := seen[name]; dup {
				report(errs, "duplicate notifier name %q (also notify[%d]); set name: on one of them", name, j)(loc.notify(i, "name"))
			} else {
				seen[name] = i
			}
		}
	}
	used := map[string]bool{}
	groupNames := map[string]int{}
	for i, g := range c.ContactGroups {
		switch {
		case g.Name == "":
			report(errs, "missing: every contact group needs a name")(loc.group(i, "name"))
		case !validAppName(g.Name):
			report(errs, "must be letters, digits, '.', '_' or '-' (got %s)", quoteVal(g.Name))(loc.group(i, "name"))
		default:
			if j, dup := groupNames[g.Name]; dup {
				report(errs, "duplicate contact group name %q (also contact_groups[%d])", g.Name, j)(loc.group(i, "name"))
			} else {
				groupNames[g.Name] = i
			}
		}
		if len(g.Notifiers) == 0 {
			report(errs, "missing: a contact group needs at least one notifier")(loc.group(i, "notifiers"))
		}
		for _, n := range g.Notifiers {
			if _, ok := seen[n]; !ok {
				report(errs, "no notifier is named %s (notifiers: %s)", quoteVal(n), strings.Join(names, ", "))(loc.group(i, "notifiers"))
			}
			used[n] = true
		}
		for _, s := range g.Severities {
			if !slices.Contains(Severities(), s) {
				report(errs, "must be one of %s (got %s)", strings.Join(Severities(), ", "), quoteVal(s))(loc.group(i, "severities"))
			}
		}
		for _, k := range g.Kinds {
			if !slices.Contains(NotifyEventKinds(), k) {
				report(errs, "must be one of %s (got %s)", strings.Join(NotifyEventKinds(), ", "), quoteVal(k))(loc.group(i, "kinds"))
			}
		}
	}
	if len(c.ContactGroups) > 0 {
		for i := range c.Notify {
			if !used[names[i]] {
				report(errs, "notifier %s is in no contact group, so it would receive nothing: add it to one", names[i])(loc.notify(i, "name"))
			}
		}
	}
}

func validateNotifier(i int, n Notifier, loc locator, errs *errList) {
	checkURL := func(schemes ...string) *url.URL {
		if n.URL == "" {
			report(errs, "missing: a %s notifier needs a url", n.Kind)(loc.notify(i, "url"))
			return nil
		}
		// The URL may carry a token (DingTalk, Slack): never print it.
		u, err := url.Parse(n.URL)
		if err != nil || u.Host == "" {
			report(errs, "must be an absolute URL with a host")(loc.notify(i, "url"))
			return nil
		}
		if !slices.Contains(schemes, u.Scheme) {
			report(errs, "scheme must be %s (got %s)", strings.Join(schemes, " or "), quoteVal(u.Scheme))(loc.notify(i, "url"))
			return nil
		}
		return u
	}
	switch n.Kind {
	case NotifyWebhook, NotifyDingTalk, NotifyFeishu:
		checkURL("https", "http")
	case NotifySlack, NotifyWeCom:
		checkURL("https", "http")
		if n.Secret.IsSet() {
			report(errs, "a %s notifier takes no secret: its token is part of the url", n.Kind)(loc.notify(i, "secret"))
		}
	case NotifyEmail:
		u := checkURL("smtp", "smtps")
		if u != nil && u.User != nil {
			report(errs, "must not contain a user or password: set options.user and the password in secret, secret_env or secret_file")(loc.notify(i, "url"))
		}
		if len(n.To) == 0 {
			report(errs, "missing: an email notifier needs at least one recipient")(loc.notify(i, "to"))
		}
		for _, to := range n.To {
			if !strings.Contains(to, "@") {
				report(errs, "not an e-mail address: %s", quoteVal(to))(loc.notify(i, "to"))
			}
		}
		user, hasUser := n.Options["user"]
		switch {
		case hasUser && user != "" && !n.Secret.IsSet():
			report(errs, "is set but the SMTP password is not: set secret, secret_env or secret_file")(loc.notify(i, "options.user"))
		case !hasUser && n.Secret.IsSet():
			report(errs, "missing: the SMTP password (secret) needs the SMTP user")(loc.notify(i, "options.user"))
		}
		if _, ok := n.Options["tls"]; ok && u != nil && u.Scheme == "smtps" {
			report(errs, "is for smtp:// only: smtps:// always uses TLS")(loc.notify(i, "options.tls"))
		}
	default:
		report(errs, "must be one of %s (got %s)", strings.Join(NotifierKinds(), ", "), quoteVal(n.Kind))(loc.notify(i, "kind"))
		return
	}
	known := notifierOptions(n.Kind)
	keys := make([]string, 0, len(n.Options))
	for k := range n.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		idx := slices.IndexFunc(known, func(o notifierOption) bool { return o.name == k })
		if idx < 0 {
			var want []string
			for _, o := range known {
				want = append(want, o.name)
			}
			report(errs, "unknown option for a %s notifier (want %s)", n.Kind, strings.Join(want, ", "))(loc.notify(i, "options."+k))
			continue
		}
		if msg := known[idx].check(n.Options[k]); msg != "" {
			report(errs, "%s", msg)(loc.notify(i, "options."+k))
		}
	}
}
