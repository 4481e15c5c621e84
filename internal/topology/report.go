package topology

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// MHA prints these exact lines last; scripts written for MHA grep for them.
const (
	HealthOK    = "MySQL Replication Health is OK."
	HealthNotOK = "MySQL Replication Health is NOT OK!"
)

// WriteText renders a report for people: the servers, the findings worst
// first, and MHA's closing line.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %s: %d servers read in %.0f ms\n\n", r.Cluster, len(r.Nodes), r.ElapsedMs)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tADDRESS\tROLE\tSOURCE\tVERSION\tRO\tIO/SQL\tLAG\tGTID")
	for _, n := range r.Nodes {
		if n.Role == "unreachable" {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t-\n", n.Name, n.Addr, n.Role)
			continue
		}
		threads, lag := "-", "-"
		if n.Role == "replica" {
			threads = n.IOThread + "/" + n.SQLThread
			if n.LagSec != nil {
				lag = fmt.Sprintf("%ds", *n.LagSec)
			} else {
				lag = "NULL"
			}
		}
		ro := map[bool]string{true: "ON", false: "OFF"}[n.ReadOnly]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Addr, n.Role, orDash(n.Source), n.Version, ro, threads, lag, abbreviate(n.GTID, 60))
	}
	_ = tw.Flush()
	b.WriteString("\n")
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "[%-4s] %s\n", f.Severity, f.Message)
		if f.Hint != "" && f.Severity != OK {
			fmt.Fprintf(&b, "       fix: %s\n", f.Hint)
		}
	}
	b.WriteString("\n")
	if r.Healthy {
		b.WriteString(HealthOK + "\n")
	} else {
		fmt.Fprintf(&b, "%s (%d problems)\n", HealthNotOK, len(r.Failures()))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func abbreviate(s string, n int) string {
	s = strings.Join(strings.Fields(s), "")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
