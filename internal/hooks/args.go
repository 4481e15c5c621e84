package hooks

import (
	"strconv"

	"github.com/cloudmha/cloudmha/internal/config"
)

// Commands (--command=) of master_ip_failover_script,
// master_ip_online_change_script and shutdown_script.
const (
	CommandStop    = "stop"
	CommandStopSSH = "stopssh"
	CommandStart   = "start"
	CommandStatus  = "status"
)

// Host is one server as MHA's scripts see it.
type Host struct {
	Hostname string
	IP       string
	Port     int
	User     string        // MySQL user (--*_master_user)
	Password config.Secret // MySQL password (--*_master_password)
	SSHUser  string
	// SSHHost, SSHIP and SSHPort are the server's ssh_host, ssh_ip and
	// ssh_port; empty/zero mean MHA's defaults (hostname, ip, 22).
	SSHHost string
	SSHIP   string
	SSHPort int
	PIDFile string // master_pid_file (shutdown_script --pid_file)
}

// HostFromServer takes a configured server. An empty ip falls back to the
// hostname (MHA resolves it; set Host.IP when the caller has resolved it).
func HostFromServer(s config.Server) Host {
	ip := s.IP
	if ip == "" {
		ip = s.Hostname
	}
	return Host{
		Hostname: s.Hostname, IP: ip, Port: s.Port,
		User: s.User, Password: s.Password,
		SSHUser: s.SSHUser, SSHHost: s.SSHHost, SSHIP: s.SSHIP, SSHPort: s.SSHPort,
		PIDFile: s.MasterPIDFile,
	}
}

// sshArgs mirrors MHA's Server::get_ssh_args_if: the SSH address is passed
// only when it differs from the server's own, the port only when it is not
// 22. prefix is "--orig_master_", "--new_master_" or "--" (shutdown_script).
// (MHA's --ssh_options is only passed when the compile-time
// USE_SSH_OPTIONS is on, which it is not in 0.58.)
func (h Host) sshArgs(prefix string) []string {
	var out []string
	sshHost := h.SSHHost
	if sshHost == "" {
		sshHost = h.Hostname
	}
	sshIP := h.SSHIP
	if sshIP == "" {
		if h.SSHHost != "" {
			sshIP = h.SSHHost
		} else {
			sshIP = h.IP
		}
	}
	if sshHost != h.Hostname || sshIP != h.IP {
		out = append(out, prefix+"ssh_host="+sshHost, prefix+"ssh_ip="+sshIP)
	}
	if h.SSHPort != 0 && h.SSHPort != 22 {
		out = append(out, prefix+"ssh_port="+strconv.Itoa(h.SSHPort))
	}
	return out
}

func port(p int) string { return strconv.Itoa(p) }

// IPFailoverArgs are master_ip_failover_script's arguments, in MHA 0.58's
// order:
//
//	stop:    --orig_master_host --orig_master_ip --orig_master_port --command=stop
//	stopssh: --orig_master_host --orig_master_ip --orig_master_port --command=stopssh --ssh_user
//	start:   --command=start --ssh_user(new) --orig_master_host/ip/port
//	         --new_master_host/ip/port/user [ssh args] --new_master_password
//	status:  --command=status --ssh_user --orig_master_host/ip/port [ssh args]
//
// plus --orig_master_ssh_host/ip/port (and --new_master_…) when the SSH
// address differs (see get_ssh_args_if). New is only used by start.
func IPFailoverArgs(command string, orig, new Host) []string {
	origHIP := []string{
		"--orig_master_host=" + orig.Hostname,
		"--orig_master_ip=" + orig.IP,
		"--orig_master_port=" + port(orig.Port),
	}
	var a []string
	switch command {
	case CommandStart:
		a = append(a, "--command=start", "--ssh_user="+new.SSHUser)
		a = append(a, origHIP...)
		a = append(a,
			"--new_master_host="+new.Hostname,
			"--new_master_ip="+new.IP,
			"--new_master_port="+port(new.Port),
			"--new_master_user="+new.User)
		a = append(a, orig.sshArgs("--orig_master_")...)
		a = append(a, new.sshArgs("--new_master_")...)
		a = append(a, "--new_master_password="+new.Password.Value())
	case CommandStatus:
		a = append(a, "--command=status", "--ssh_user="+orig.SSHUser)
		a = append(a, origHIP...)
		a = append(a, orig.sshArgs("--orig_master_")...)
	case CommandStopSSH:
		a = append(a, origHIP...)
		a = append(a, "--command=stopssh", "--ssh_user="+orig.SSHUser)
		a = append(a, orig.sshArgs("--orig_master_")...)
	default: // stop
		a = append(a, origHIP...)
		a = append(a, "--command="+command)
		a = append(a, orig.sshArgs("--orig_master_")...)
	}
	return a
}

// OnlineChangeArgs are master_ip_online_change_script's arguments (command
// stop or start), in MHA 0.58's order: --command --orig_master_host/ip/port/user
// --new_master_host/ip/port/user --orig_master_ssh_user --new_master_ssh_user
// [ssh args] [--orig_master_is_new_slave] --orig_master_password
// --new_master_password.
func OnlineChangeArgs(command string, orig, new Host, origIsNewSlave bool) []string {
	a := []string{
		"--command=" + command,
		"--orig_master_host=" + orig.Hostname,
		"--orig_master_ip=" + orig.IP,
		"--orig_master_port=" + port(orig.Port),
		"--orig_master_user=" + orig.User,
		"--new_master_host=" + new.Hostname,
		"--new_master_ip=" + new.IP,
		"--new_master_port=" + port(new.Port),
		"--new_master_user=" + new.User,
		"--orig_master_ssh_user=" + orig.SSHUser,
		"--new_master_ssh_user=" + new.SSHUser,
	}
	a = append(a, orig.sshArgs("--orig_master_")...)
	a = append(a, new.sshArgs("--new_master_")...)
	if origIsNewSlave {
		a = append(a, "--orig_master_is_new_slave")
	}
	return append(a,
		"--orig_master_password="+orig.Password.Value(),
		"--new_master_password="+new.Password.Value())
}

// ShutdownArgs are shutdown_script's arguments, in MHA 0.58's order:
//
//	stop:    --command=stop --host --ip --port [--pid_file] [ssh args]
//	stopssh: --command=stopssh --ssh_user --host --ip --port [--pid_file] [ssh args]
//	status:  --command=status --ssh_user --host --ip [ssh args]
//
// where the ssh args are --ssh_host/--ssh_ip/--ssh_port when they differ.
func ShutdownArgs(command string, h Host) []string {
	var a []string
	switch command {
	case CommandStatus:
		a = append(a, "--command=status", "--ssh_user="+h.SSHUser, "--host="+h.Hostname, "--ip="+h.IP)
		return append(a, h.sshArgs("--")...)
	case CommandStopSSH:
		a = append(a, "--command=stopssh", "--ssh_user="+h.SSHUser)
	default:
		a = append(a, "--command="+command)
	}
	a = append(a, "--host="+h.Hostname, "--ip="+h.IP, "--port="+port(h.Port))
	if h.PIDFile != "" {
		a = append(a, "--pid_file="+h.PIDFile)
	}
	return append(a, h.sshArgs("--")...)
}

// Report is what report_script is told.
type Report struct {
	OrigMasterHost string
	// NewMasterHost and NewSlaveHosts are passed only when a new primary
	// was activated (MHA: --new_master_host and --new_slave_hosts, the
	// hostnames of the replicas that were recovered, comma-separated).
	NewMasterHost string
	NewSlaveHosts []string
	Conf          string // the configuration file
	Subject, Body string
}

// ReportArgs are report_script's arguments: --orig_master_host
// [--new_master_host --new_slave_hosts] --conf --subject --body.
func ReportArgs(r Report) []string {
	a := []string{"--orig_master_host=" + r.OrigMasterHost}
	if r.NewMasterHost != "" {
		slaves := ""
		for i, s := range r.NewSlaveHosts {
			if i > 0 {
				slaves += ","
			}
			slaves += s
		}
		a = append(a, "--new_master_host="+r.NewMasterHost, "--new_slave_hosts="+slaves)
	}
	return append(a, "--conf="+r.Conf, "--subject="+r.Subject, "--body="+r.Body)
}

// SecondaryCheckArgs are the arguments MHA 0.58 appends to
// secondary_check_script: --user (the SSH user) --master_host --master_ip
// --master_port --master_user --master_password --ping_type.
func SecondaryCheckArgs(master Host, pingType string) []string {
	return []string{
		"--user=" + master.SSHUser,
		"--master_host=" + master.Hostname,
		"--master_ip=" + master.IP,
		"--master_port=" + port(master.Port),
		"--master_user=" + master.User,
		"--master_password=" + master.Password.Value(),
		"--ping_type=" + pingType,
	}
}
