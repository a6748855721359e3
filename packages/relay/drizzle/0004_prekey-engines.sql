DROP INDEX `kyber_prekeys_key`;--> statement-breakpoint
DROP INDEX `kyber_prekeys_device`;--> statement-breakpoint
ALTER TABLE `kyber_prekeys` ADD `engine` text DEFAULT 'libsignal' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `kyber_prekeys_key` ON `kyber_prekeys` (`account_id`,`device_id`,`engine`,`key_id`);--> statement-breakpoint
CREATE INDEX `kyber_prekeys_device` ON `kyber_prekeys` (`account_id`,`device_id`,`engine`,`last_resort`,`id`);--> statement-breakpoint
DROP INDEX `one_time_prekeys_key`;--> statement-breakpoint
ALTER TABLE `one_time_prekeys` ADD `engine` text DEFAULT 'libsignal' NOT NULL;--> statement-breakpoint
CREATE INDEX `one_time_prekeys_device` ON `one_time_prekeys` (`account_id`,`device_id`,`engine`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `one_time_prekeys_key` ON `one_time_prekeys` (`account_id`,`device_id`,`engine`,`key_id`);--> statement-breakpoint
PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_signed_prekeys` (
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`engine` text DEFAULT 'libsignal' NOT NULL,
	`key_id` integer NOT NULL,
	`record` blob NOT NULL,
	PRIMARY KEY(`account_id`, `device_id`, `engine`),
	FOREIGN KEY (`account_id`,`device_id`) REFERENCES `devices`(`account_id`,`device_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
INSERT INTO `__new_signed_prekeys`("account_id", "device_id", "engine", "key_id", "record") SELECT "account_id", "device_id", 'libsignal', "key_id", "record" FROM `signed_prekeys`;--> statement-breakpoint
DROP TABLE `signed_prekeys`;--> statement-breakpoint
ALTER TABLE `__new_signed_prekeys` RENAME TO `signed_prekeys`;--> statement-breakpoint
PRAGMA foreign_keys=ON;