PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_envelopes` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`guid` text NOT NULL,
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`sender_account_id` text NOT NULL,
	`sender_device_id` integer NOT NULL,
	`type` text NOT NULL,
	`ciphertext` blob NOT NULL,
	`server_timestamp` integer NOT NULL
);
--> statement-breakpoint
INSERT INTO `__new_envelopes`("seq", "guid", "account_id", "device_id", "sender_account_id", "sender_device_id", "type", "ciphertext", "server_timestamp") SELECT "seq", "guid", "account_id", "device_id", "sender_account_id", "sender_device_id", "type", "ciphertext", "server_timestamp" FROM `envelopes`;--> statement-breakpoint
-- keep the queue's AUTOINCREMENT counter: seq values are never reused (backlog cursors rely on it)
DELETE FROM sqlite_sequence WHERE name = '__new_envelopes';--> statement-breakpoint
INSERT INTO sqlite_sequence (name, seq) SELECT '__new_envelopes', seq FROM sqlite_sequence WHERE name = 'envelopes';--> statement-breakpoint
DROP TABLE `envelopes`;--> statement-breakpoint
ALTER TABLE `__new_envelopes` RENAME TO `envelopes`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE UNIQUE INDEX `envelopes_guid_unique` ON `envelopes` (`guid`);--> statement-breakpoint
CREATE INDEX `envelopes_queue` ON `envelopes` (`account_id`,`device_id`,`seq`);