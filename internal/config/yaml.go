package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlSection maps the keys of an application-level YAML mapping to MHA
// parameter names.
type yamlSection struct {
	name string
	keys [][2]string // yaml key, MHA key
}

// yamlAppSections lists the application-level mappings of the YAML format.
func yamlAppSections() []yamlSection {
	return []yamlSection{
		{"manager", [][2]string{{"workdir", "manager_workdir"}, {"log", "manager_log"}, {"log_level", "log_level"}}},
		{"monitor", [][2]string{{"ping_interval", "ping_interval"}, {"ping_type", "ping_type"},
			{"secondary_check_script", "secondary_check_script"}, {"check_repl_delay", "check_repl_delay"},
			{"check_repl_filter", "check_repl_filter"}, {"latest_priority", "latest_priority"},
			{"multi_tier_slave", "multi_tier_slave"}}},
		{"scripts", [][2]string{{"master_ip_failover", "master_ip_failover_script"},
			{"master_ip_online_change", "master_ip_online_change_script"}, {"shutdown", "shutdown_script"},
			{"report", "report_script"}, {"init_conf_load", "init_conf_load_script"}}},
		{"address", [][2]string{{"mover", "address_mover"}, {"vip", "vip"}, {"interface", "vip_interface"},
			{"prefix", "vip_prefix"}}},
		{"metrics", [][2]string{{"listen", "metrics_listen"}}},
	}
}

// binlogKeys are the parameters a binlog server uses.
func binlogKeys() []string {
	return []string{"hostname", "ip", "port", "ssh_host", "ssh_ip", "ssh_port", "ssh_user", "ssh_options",
		"ssh_connection_timeout", "master_binlog_dir", "remote_workdir", "node_label"}
}

type yamlPair struct {
	key  string
	line int
	val  *yaml.Node
	disp string
}

// yamlParser walks the document, reporting errors at the right line.
type yamlParser struct {
	s    *source
	file string
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	}
	return "an alias"
}

// pairs returns a mapping's entries; disp is the mapping's path ("" at the
// top). Duplicate and non-scalar keys are errors.
func (p *yamlParser) pairs(n *yaml.Node, disp string) []yamlPair {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		if n != nil && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
			p.s.errs.add(p.file, n.Line, disp, "must be a mapping (got %s)", kindName(n))
		}
		return nil
	}
	var out []yamlPair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			p.s.errs.add(p.file, n.Content[i].Line, disp, "keys must be plain strings")
			continue
		}
		d := k.Value
		if disp != "" {
			d = disp + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			p.s.errs.add(p.file, k.Line, d, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, yamlPair{key: k.Value, line: k.Line, val: v, disp: d})
	}
	return out
}

// scalar returns a scalar's text; null is "". Lists are accepted (joined
// with ",") when list is true.
func (p *yamlParser) scalar(pr yamlPair, list bool) (string, bool) {
	v := resolve(pr.val)
	if v == nil {
		return "", true
	}
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return "", true
	case v.Kind == yaml.ScalarNode:
		return v.Value, true
	case v.Kind == yaml.SequenceNode && list:
		var parts []string
		for _, it := range v.Content {
			it = resolve(it)
			if it == nil || it.Kind != yaml.ScalarNode {
				p.s.errs.add(p.file, pr.line, pr.disp, "list items must be strings")
				return "", false
			}
			parts = append(parts, it.Value)
		}
		return strings.Join(parts, ","), true
	}
	p.s.errs.add(p.file, pr.line, pr.disp, "must be a single value (got %s)", kindName(v))
	return "", false
}

func (p *yamlParser) list(pr yamlPair) []string {
	v := resolve(pr.val)
	if v != nil && v.Kind == yaml.ScalarNode {
		if v.Tag == "!!null" || v.Value == "" {
			return nil
		}
		return []string{v.Value}
	}
	if v == nil || v.Kind != yaml.SequenceNode {
		p.s.errs.add(p.file, pr.line, pr.disp, "must be a list of strings")
		return nil
	}
	var out []string
	for _, it := range v.Content {
		it = resolve(it)
		if it == nil || it.Kind != yaml.ScalarNode {
			p.s.errs.add(p.file, pr.line, pr.disp, "must be a list of strings")
			return nil
		}
		out = append(out, it.Value)
	}
	return out
}

func (p *yamlParser) stringMap(pr yamlPair) map[string]string {
	out := map[string]string{}
	for _, c := range p.pairs(pr.val, pr.disp) {
		if v, ok := p.scalar(c, false); ok {
			out[c.key] = v
		}
	}
	return out
}

// serverLayer reads one per-server mapping (defaults, a server, a binlog
// server) whose allowed keys are allowed.
func (p *yamlParser) serverLayer(n *yaml.Node, disp, name string, line int, allowed func(string) bool) layer {
	l := layer{name: name, file: p.file, line: line, disp: disp, prefix: disp + ".", keys: map[string]entry{}}
	for _, pr := range p.pairs(n, disp) {
		if !allowed(pr.key) {
			p.s.errs.add(p.file, pr.line, pr.disp, "unknown key")
			continue
		}
		v, ok := p.scalar(pr, pr.key == "master_binlog_dir")
		if !ok {
			continue
		}
		if pr.key == "name" {
			if v == "" {
				p.s.errs.add(p.file, pr.line, pr.disp, "must not be empty")
				continue
			}
			l.name = v
		}
		l.keys[pr.key] = p.s.newEntry(pr.key, v, p.file, pr.line, pr.disp)
	}
	p.s.checkSecretConflicts(l)
	return l
}

// ParseYAML parses cloudmha's native YAML format. name is used in errors
// and, without a name: key, as the application name (base name without
// extension). opts.Path and opts.GlobalPath are not used.
func ParseYAML(name string, data []byte, opts LoadOptions) (*Config, error) {
	s := newSource(dialectYAML, opts)
	base := filepath.Base(name)
	s.name = strings.TrimSuffix(base, filepath.Ext(base))
	s.files = []string{name}
	s.serversFile, s.serversKey = name, "servers"
	p := &yamlParser{s: s, file: name}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 messages carry a line number and no document content.
		s.errs.add(name, 0, "", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, s.errs.err()
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		s.errs.add(name, 0, "", "empty configuration")
		return nil, s.errs.err()
	}
	root := resolve(doc.Content[0])

	appDisp := map[string]string{}
	sections := map[string]yamlSection{}
	for _, sec := range yamlAppSections() {
		sections[sec.name] = sec
		for _, k := range sec.keys {
			appDisp[k[1]] = sec.name + "." + k[0]
		}
	}
	s.appDisp = func(k string) string {
		if d, ok := appDisp[k]; ok {
			return d
		}
		return k
	}
	s.def = layer{name: "defaults", file: name, disp: "defaults", prefix: "defaults.", keys: map[string]entry{}}
	var defaults *layer
	for _, pr := range p.pairs(root, "") {
		switch pr.key {
		case "name":
			v, ok := p.scalar(pr, false)
			if ok && !validAppName(v) {
				s.errs.add(name, pr.line, pr.disp, "must be letters, digits, '.', '_' or '-' (got %s)", quoteVal(v))
			} else if ok {
				s.name = v
			}
		case "defaults":
			l := p.serverLayer(pr.val, "defaults", "defaults", pr.line, func(k string) bool {
				return keyScope(k) == scopeServer
			})
			defaults = &l
		case "servers":
			s.serversLine = pr.line
			v := resolve(pr.val)
			if v == nil || v.Kind != yaml.SequenceNode {
				s.errs.add(name, pr.line, "servers", "must be a list of servers")
				continue
			}
			for i, it := range v.Content {
				disp := fmt.Sprintf("servers[%d]", i)
				l := p.serverLayer(it, disp, fmt.Sprintf("server%d", i+1), resolveLine(it), func(k string) bool {
					sc := keyScope(k)
					return k == "name" || sc == scopeServer || sc == scopeHost
				})
				s.hosts = append(s.hosts, l)
			}
		case "binlog_servers":
			v := resolve(pr.val)
			if v == nil || v.Kind != yaml.SequenceNode {
				s.errs.add(name, pr.line, pr.disp, "must be a list of binlog servers")
				continue
			}
			for i, it := range v.Content {
				disp := fmt.Sprintf("binlog_servers[%d]", i)
				l := p.serverLayer(it, disp, fmt.Sprintf("binlog%d", i+1), resolveLine(it), func(k string) bool {
					return k == "name" || slices.Contains(binlogKeys(), k)
				})
				s.binlogs = append(s.binlogs, l)
			}
		case "notify":
			p.notify(pr)
		case "contact_groups":
			p.contactGroups(pr)
		default:
			sec, ok := sections[pr.key]
			if !ok {
				s.errs.add(name, pr.line, pr.disp, "unknown key")
				continue
			}
			p.appSection(sec, pr)
		}
	}
	if defaults != nil {
		// Only per-server keys are allowed in defaults, so they cannot
		// collide with the application keys already in s.def.
		s.def.keys = overlay(s.def.keys, defaults.keys)
		s.def.line = defaults.line
	}
	return s.build()
}

func resolveLine(n *yaml.Node) int {
	if r := resolve(n); r != nil {
		return r.Line
	}
	return 0
}

func (p *yamlParser) appSection(sec yamlSection, pr yamlPair) {
	if p.s.appLine == nil {
		p.s.appLine = map[string]int{}
	}
	for _, k := range sec.keys {
		p.s.appLine[k[1]] = pr.line
	}
	for _, c := range p.pairs(pr.val, pr.disp) {
		if sec.name == "address" && c.key == "options" {
			p.s.addrOptions = p.stringMap(c)
			continue
		}
		if sec.name == "address" && c.key == "dns" {
			p.s.addrDNS = p.addressLayer(c)
			continue
		}
		if sec.name == "metrics" && c.key == "push" {
			p.metricsPush(c)
			continue
		}
		idx := slices.IndexFunc(sec.keys, func(k [2]string) bool { return k[0] == c.key })
		if idx < 0 {
			p.s.errs.add(p.file, c.line, c.disp, "unknown key")
			continue
		}
		if v, ok := p.scalar(c, false); ok {
			mk := sec.keys[idx][1]
			p.s.def.keys[mk] = p.s.newEntry(mk, v, p.file, c.line, c.disp)
		}
	}
}

// addressLayer reads address.dns: {mover: KIND, options: {…}}.
func (p *yamlParser) addressLayer(pr yamlPair) *AddressLayer {
	l := &AddressLayer{File: p.file, Line: pr.line, Options: map[string]string{}}
	moverLine := pr.line
	for _, c := range p.pairs(pr.val, pr.disp) {
		switch c.key {
		case "mover":
			moverLine = c.line
			if v, ok := p.scalar(c, false); ok {
				l.Mover = v
			}
		case "options":
			l.Options = p.stringMap(c)
		default:
			p.s.errs.add(p.file, c.line, c.disp, "unknown key (want mover, options)")
		}
	}
	switch {
	case l.Mover == "":
		p.s.errs.add(p.file, pr.line, pr.disp+".mover", "missing: the DNS layer needs a mover (%s)", strings.Join(DNSMovers(), ", "))
	case !slices.Contains(DNSMovers(), l.Mover):
		p.s.errs.add(p.file, moverLine, pr.disp+".mover", "must be a DNS mover (%s), got %s", strings.Join(DNSMovers(), ", "), quoteVal(l.Mover))
	}
	return l
}

func (p *yamlParser) notify(pr yamlPair) {
	v := resolve(pr.val)
	if v == nil || v.Kind != yaml.SequenceNode {
		p.s.errs.add(p.file, pr.line, pr.disp, "must be a list of notifiers")
		return
	}
	for i, it := range v.Content {
		disp := fmt.Sprintf("notify[%d]", i)
		l := layer{name: disp, file: p.file, line: resolveLine(it), disp: disp, prefix: disp + ".", keys: map[string]entry{}}
		var n Notifier
		var secrets []entry
		for _, c := range p.pairs(it, disp) {
			e := p.s.newEntry(c.key, "", p.file, c.line, c.disp)
			switch c.key {
			case "to":
				n.To = p.list(c)
			case "options":
				n.Options = p.notifyOptions(c, l)
			case "name", "kind", "url", "secret", "secret_env", "secret_file":
				val, ok := p.scalar(c, false)
				if !ok {
					continue
				}
				e.val = val
				switch c.key {
				case "name":
					if val == "" {
						p.s.errs.add(p.file, c.line, c.disp, "must not be empty")
						continue
					}
					n.Name = val
				case "kind":
					n.Kind = strings.ToLower(val)
				case "url":
					n.URL = val
				case "secret":
					p.s.addSecret(val)
					n.Secret = NewSecret(val)
					secrets = append(secrets, e)
				case "secret_env":
					n.Secret = p.s.secretEnv(e)
					secrets = append(secrets, e)
				case "secret_file":
					n.Secret = p.s.secretFile(e)
					secrets = append(secrets, e)
				}
			default:
				p.s.errs.add(p.file, c.line, c.disp, "unknown key")
				continue
			}
			l.keys[c.key] = e
		}
		if len(secrets) > 1 {
			p.s.errs.addAt(secrets[1], "conflicts with %s: set only one of secret, secret_env, secret_file", secrets[0].disp)
		}
		if len(secrets) > 0 {
			// Problems with "the secret" are reported where it was set.
			l.keys["secret"] = secrets[0]
		}
		p.s.notify = append(p.s.notify, n)
		p.s.notifyPos = append(p.s.notifyPos, l)
	}
}

// notifyOptions reads a notifier's options (strings; a list is joined with
// ","), recording each one's position in l as "options.KEY".
func (p *yamlParser) notifyOptions(pr yamlPair, l layer) map[string]string {
	out := map[string]string{}
	for _, c := range p.pairs(pr.val, pr.disp) {
		if v, ok := p.scalar(c, true); ok {
			out[c.key] = v
			l.keys["options."+c.key] = p.s.newEntry("options."+c.key, v, p.file, c.line, c.disp)
		}
	}
	return out
}

// contactGroups reads contact_groups: a list of {name, notifiers,
// severities, kinds}.
func (p *yamlParser) contactGroups(pr yamlPair) {
	v := resolve(pr.val)
	if v == nil || v.Kind != yaml.SequenceNode {
		p.s.errs.add(p.file, pr.line, pr.disp, "must be a list of contact groups")
		return
	}
	for i, it := range v.Content {
		disp := fmt.Sprintf("contact_groups[%d]", i)
		l := layer{name: disp, file: p.file, line: resolveLine(it), disp: disp, prefix: disp + ".", keys: map[string]entry{}}
		var g ContactGroup
		lower := func(in []string) []string {
			for j := range in {
				in[j] = strings.ToLower(strings.TrimSpace(in[j]))
			}
			return in
		}
		for _, c := range p.pairs(it, disp) {
			switch c.key {
			case "name":
				if val, ok := p.scalar(c, false); ok {
					g.Name = val
				}
			case "notifiers":
				g.Notifiers = p.list(c)
			case "severities":
				g.Severities = lower(p.list(c))
			case "kinds":
				g.Kinds = lower(p.list(c))
			default:
				p.s.errs.add(p.file, c.line, c.disp, "unknown key (want name, notifiers, severities, kinds)")
				continue
			}
			l.keys[c.key] = p.s.newEntry(c.key, "", p.file, c.line, c.disp)
		}
		p.s.groups = append(p.s.groups, g)
		p.s.groupPos = append(p.s.groupPos, l)
	}
}

func validAppName(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
