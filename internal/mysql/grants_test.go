package mysql

import (
	"errors"
	"fmt"
	"testing"

	driver "github.com/go-sql-driver/mysql"
)

func TestHasGlobalPrivilege(t *testing.T) {
	tests := []struct {
		name   string
		grants []string
		yes    []string
		no     []string
	}{
		{
			name:   "MySQL 8.0 replication user",
			grants: []string{"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `repl`@`%`"},
			yes:    []string{"REPLICATION SLAVE", "replication client", "Replication  Slave", "REPLICATION REPLICA"},
			no:     []string{"SUPER", "RELOAD", "SELECT", "GRANT OPTION", "BINLOG_ADMIN"},
		},
		{
			name: "MySQL 8.0 MHA manager user with dynamic privileges",
			grants: []string{
				"GRANT SELECT, RELOAD, PROCESS, SUPER, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `mha`@`10.0.0.%`",
				"GRANT BACKUP_ADMIN,BINLOG_ADMIN,CONNECTION_ADMIN,REPLICATION_SLAVE_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `mha`@`10.0.0.%`",
				"GRANT SELECT ON `mysql`.`user` TO `mha`@`10.0.0.%`",
			},
			yes: []string{"SUPER", "RELOAD", "PROCESS", "SELECT", "REPLICATION_SLAVE_ADMIN", "system_variables_admin", "BINLOG_ADMIN"},
			no:  []string{"INSERT", "SHUTDOWN", "GROUP_REPLICATION_ADMIN"},
		},
		{
			name:   "MySQL 5.7 root",
			grants: []string{"GRANT ALL PRIVILEGES ON *.* TO 'root'@'localhost' WITH GRANT OPTION", "GRANT PROXY ON ''@'' TO 'root'@'localhost' WITH GRANT OPTION"},
			yes:    []string{"SUPER", "REPLICATION SLAVE", "SHUTDOWN", "GRANT OPTION"},
		},
		{
			name:   "MySQL 8.0 monitoring user with table and column privileges only",
			grants: []string{"GRANT USAGE ON *.* TO `mon`@`%`", "GRANT SELECT (`Host`, `User`), UPDATE ON `mysql`.`user` TO `mon`@`%`", "GRANT `app_role`@`%` TO `mon`@`%`", "GRANT ALL PRIVILEGES ON `app`.* TO `mon`@`%` WITH GRANT OPTION"},
			no:     []string{"SELECT", "UPDATE", "USAGE ON", "SUPER", "GRANT OPTION", "REPLICATION CLIENT"},
		},
		{
			name:   "MariaDB 10.11 monitoring user (captured from mariadbd 10.11.19)",
			grants: []string{"GRANT REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR ON *.* TO `cmha_mon`@`127.0.0.1` IDENTIFIED BY PASSWORD '*A9300A2674326FEDAE7A65231FAB2D0EE8932149'"},
			yes:    []string{"REPLICATION SLAVE", "REPLICATION REPLICA", "REPLICATION CLIENT", "BINLOG MONITOR", "SLAVE MONITOR", "REPLICA MONITOR"},
			no:     []string{"SUPER", "READ_ONLY ADMIN", "BINLOG ADMIN"},
		},
		{
			name: "MariaDB 10.11 root",
			grants: []string{
				"GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket WITH GRANT OPTION",
				"GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION",
			},
			yes: []string{"SUPER", "READ_ONLY ADMIN", "REPLICATION REPLICA", "GRANT OPTION"},
		},
		{
			name:   "MariaDB 10.5+ spellings",
			grants: []string{"GRANT RELOAD, PROCESS, READ_ONLY ADMIN, REPLICATION REPLICA, BINLOG ADMIN, REPLICA MONITOR, REPLICATION MASTER ADMIN ON *.* TO `mha`@`%`"},
			yes:    []string{"REPLICATION SLAVE", "SLAVE MONITOR", "READ_ONLY ADMIN", "BINLOG ADMIN", "REPLICATION MASTER ADMIN"},
			no:     []string{"REPLICATION CLIENT", "SUPER"},
		},
		{
			name:   "garbage",
			grants: []string{"", "GRANT", "REVOKE ALL ON *.* FROM x", "GRANT ALL ON"},
			no:     []string{"ALL", "SUPER"},
		},
	}
	for _, tt := range tests {
		for _, p := range tt.yes {
			if !HasGlobalPrivilege(tt.grants, p) {
				t.Errorf("%s: HasGlobalPrivilege(%q) = false", tt.name, p)
			}
		}
		for _, p := range tt.no {
			if HasGlobalPrivilege(tt.grants, p) {
				t.Errorf("%s: HasGlobalPrivilege(%q) = true", tt.name, p)
			}
		}
	}
	if HasGlobalPrivilege(nil, "SUPER") {
		t.Error("nil grants")
	}
}

func TestIsAliveError(t *testing.T) {
	for _, n := range []uint16{1040, 1042, 1043, 1044, 1045, 1129, 1130, 1203, 1226, 1251, 1275} {
		err := &driver.MySQLError{Number: n, Message: "x"}
		if !IsAliveError(err) {
			t.Errorf("IsAliveError(%d) = false", n)
		}
		if !IsAliveError(fmt.Errorf("connect: %w", err)) {
			t.Errorf("IsAliveError(wrapped %d) = false", n)
		}
		if ErrorNumber(fmt.Errorf("a: %w", err)) != n {
			t.Errorf("ErrorNumber(wrapped %d)", n)
		}
	}
	for _, err := range []error{
		nil, errors.New("dial tcp 127.0.0.1:1: connect: connection refused"),
		&driver.MySQLError{Number: 1064}, &driver.MySQLError{Number: 2003}, &driver.MySQLError{Number: 1146},
		driver.ErrInvalidConn,
	} {
		if IsAliveError(err) {
			t.Errorf("IsAliveError(%v) = true", err)
		}
	}
}

func TestRedactKeepsChain(t *testing.T) {
	inner := &driver.MySQLError{Number: 1045, Message: "Access denied for user 'u' (password hunter2)"}
	err := redact(fmt.Errorf("x: %w", inner), "hunter2")
	if got := err.Error(); got != "x: Error 1045: Access denied for user 'u' (password [redacted])" {
		t.Errorf("Error() = %q", got)
	}
	if ErrorNumber(err) != 1045 || !IsAliveError(err) {
		t.Error("redacted error lost its chain")
	}
	if redact(inner, "") != error(inner) || redact(inner, "absent") != error(inner) || redact(nil, "x") != nil {
		t.Error("redact without a match must return err unchanged")
	}
}

func TestSplitGrant(t *testing.T) {
	privs, on, ok := splitGrant("GRANT SELECT (`a`, `b`), INSERT ON TABLE `db`.`t` TO `u`@`%`")
	if !ok || on != "TABLE" || len(privs) != 2 || privs[0] != "SELECT" || privs[1] != "INSERT" {
		t.Errorf("splitGrant = %q %q %v", privs, on, ok)
	}
	if _, on, ok := splitGrant("grant usage on *.* to 'a'@'b'"); !ok || on != "*.*" {
		t.Errorf("lower-case grant: %q %v", on, ok)
	}
}
