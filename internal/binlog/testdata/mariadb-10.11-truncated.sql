/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;
/*!40019 SET @@session.max_delayed_threads=0*/;
/*!50003 SET @OLD_COMPLETION_TYPE=@@COMPLETION_TYPE,COMPLETION_TYPE=0*/;
DELIMITER /*!*/;
# at 4
#261121 18:58:26 server id 1  end_log_pos 256 CRC32 0x68525cc9 	Start: binlog v 4, server v 10.11.19-MariaDB-0+deb12u1-log created 261121 18:58:26
# Warning: this binlog is either in use or was not closed properly.
BINLOG '
0ukBaw8BAAAA/AAAAAABAAABAAQAMTAuMTEuMTktTWFyaWFEQi0wK2RlYjEydTEtbG9nAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAEzgNAAgAEgAEBAQEEgAA5AAEGggAAAAICAgCAAAACgoKAAAAAAAA
CgoKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAEEwQADQgICAoKCgHJXFJo
'/*!*/;
# at 256
#261121 18:58:26 server id 1  end_log_pos 299 CRC32 0x0060a9b7 	Gtid list [0-1-5]
# at 299
#261121 18:58:26 server id 1  end_log_pos 342 CRC32 0xa396c759 	Binlog checkpoint mysql-bin.000002
# at 342
#261121 18:58:26 server id 1  end_log_pos 385 CRC32 0x301f78b5 	Binlog checkpoint mysql-bin.000003
# at 385
#261121 18:58:26 server id 1  end_log_pos 427 CRC32 0x35063222 	GTID 1-1-1 trans
/*M!100101 SET @@session.skip_parallel_replication=0*//*!*/;
/*M!100001 SET @@session.gtid_domain_id=1*//*!*/;
/*M!100001 SET @@session.server_id=1*//*!*/;
/*M!100001 SET @@session.gtid_seq_no=1*//*!*/;
START TRANSACTION
/*!*/;
# at 427
# at 492
#261121 18:58:26 server id 1  end_log_pos 538 CRC32 0x4c3af0fb 	Table_map: `t`.`w` mapped to number 18
# at 538
#261121 18:58:26 server id 1  end_log_pos 588 CRC32 0x5afea698 	Write_rows: table id 18 flags: STMT_END_F

BINLOG '
0ukBaxMBAAAALgAAABoCAAAAABIAAAAAAAEAAXQAAXcAAwMP/ANkAAIG+/A6TA==
0ukBaxcBAAAAMgAAAEwCAAAAABIAAAAAAAEAAwf8BwAAAAtkb20xIFwgYmFja5im/lo=
'/*!*/;
# Number of rows: 1
# at 588
#261121 18:58:26 server id 1  end_log_pos 619 CRC32 0xe86b8bab 	Xid = 16
COMMIT/*!*/;
# at 619
#261121 18:58:26 server id 1  end_log_pos 661 CRC32 0x49415922 	GTID 0-1-6 trans
/*M!100001 SET @@session.gtid_domain_id=0*//*!*/;
/*M!100001 SET @@session.gtid_seq_no=6*//*!*/;
START TRANSACTION
/*!*/;
# at 661
# at 720
#261121 18:58:26 server id 1  end_log_pos 766 CRC32 0x5667cd18 	Table_map: `t`.`w` mapped to number 18
# at 766
#261121 18:58:26 server id 1  end_log_pos 820 CRC32 0xc0072989 	Update_rows: table id 18 flags: STMT_END_F

BINLOG '
0ukBaxMBAAAALgAAAP4CAAAAABIAAAAAAAEAAXQAAXcAAwMP/ANkAAIGGM1nVg==
0ukBaxgBAAAANgAAADQDAAAAABIAAAAAAAEAAwcH/AEAAAADYTti/AEAAAAFdXBkJ3GJKQfA
'/*!*/;
# Number of rows: 1
# at 820
#261121 18:58:26 server id 1  end_log_pos 851 CRC32 0xef570fd1 	Xid = 18
COMMIT/*!*/;
# at 851
#261121 18:58:26 server id 1  end_log_pos 893 CRC32 0x0821dd47 	GTID 0-1-7 ddl
/*M!100001 SET @@session.gtid_seq_no=7*//*!*/;
# at 893
#261121 18:58:26 server id 1  end_log_pos 989 CRC32 0x7fec0d34 	Query	thread_id=6	exec_time=0	error_code=0	xid=19
SET TIMESTAMP=1795287506/*!*/;
SET @@session.pseudo_thread_id=6/*!*/;
SET @@session.foreign_key_checks=1, @@session.sql_auto_is_null=0, @@session.unique_checks=1, @@session.autocommit=1, @@session.check_constraint_checks=1, @@session.sql_if_exists=0, @@session.explicit_defaults_for_timestamp=1, @@session.system_versioning_insert_history=0/*!*/;
SET @@session.sql_mode=1411383296/*!*/;
SET @@session.auto_increment_increment=1, @@session.auto_increment_offset=1/*!*/;
/*!\C utf8mb3 *//*!*/;
SET @@session.character_set_client=utf8mb3,@@session.collation_connection=33,@@session.collation_server=8/*!*/;
SET @@session.lc_time_names=0/*!*/;
SET @@session.collation_database=DEFAULT/*!*/;
create table t.s (a int)
/*!*/;
# at 989
#261121 18:58:26 server id 1  end_log_pos 1031 CRC32 0x085a2d64 	GTID 0-1-8 trans
/*M!100001 SET @@session.gtid_seq_no=8*//*!*/;
START TRANSACTION
/*!*/;
# at 1031
# at 1084
#261121 18:58:26 server id 1  end_log_pos 1125 CRC32 0x2625169c 	Table_map: `t`.`s` mapped to number 22
# at 1125
#261121 18:58:26 server id 1  end_log_pos 1168 CRC32 0x95af9496 	Write_rows: table id 22 flags: STMT_END_F

BINLOG '
0ukBaxMBAAAAKQAAAGUEAAAAABYAAAAAAAEAAXQAAXMAAQMAAZwWJSY=
0ukBaxcBAAAAKwAAAJAEAAAAABYAAAAAAAEAAQH+AQAAAP4CAAAAlpSvlQ==
'/*!*/;
# Number of rows: 2
# at 1168
#261121 18:58:26 server id 1  end_log_pos 1199 CRC32 0x17a2cd84 	Xid = 20
COMMIT/*!*/;
# at 1199
#261121 18:58:26 server id 1  end_log_pos 1241 CRC32 0xd678df09 	GTID 0-1-9 trans
/*M!100001 SET @@session.gtid_seq_no=9*//*!*/;
START TRANSACTION
/*!*/;
# at 1241
# at 1299
#261121 18:58:26 server id 1  end_log_pos 1345 CRC32 0xb39e1eb4 	Table_map: `t`.`w` mapped to number 18
# at 1345
#261121 18:58:26 server id 1  end_log_pos 1389 CRC32 0xb800b68d 	Write_rows: table id 18 flags: STMT_END_F

BINLOG '
0ukBaxMBAAAALgAAAEEFAAAAABIAAAAAAAEAAXQAAXcAAwMP/ANkAAIGtB6esw==
0ukBaxcBAAAALAAAAG0FAAAAABIAAAAAAAEAAwf8CAAAAAVsYXN0MY22ALg=
'/*!*/;
# Number of rows: 1
# at 1389
# at 1447
#261121 18:58:26 server id 1  end_log_pos 1493 CRC32 0x8f5a8cce 	Table_map: `t`.`w` mapped to number 18
DELIMITER ;
# End of log file
ROLLBACK /* added by mysqlbinlog */;
/*!50003 SET COMPLETION_TYPE=@OLD_COMPLETION_TYPE*/;
/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=0*/;
