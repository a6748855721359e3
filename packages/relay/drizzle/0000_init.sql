CREATE TABLE `accounts` (
	`id` text PRIMARY KEY NOT NULL,
	`username` text NOT NULL,
	`created_at` integer NOT NULL,
	`next_device_id` integer DEFAULT 2 NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `accounts_username_unique` ON `accounts` (`username`);--> statement-breakpoint
CREATE TABLE `blobs` (
	`id` text PRIMARY KEY NOT NULL,
	`uploader_id` text NOT NULL,
	`size` integer NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `blobs_expiry` ON `blobs` (`expires_at`);--> statement-breakpoint
CREATE TABLE `device_credentials` (
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`secret_hash` blob NOT NULL,
	PRIMARY KEY(`account_id`, `device_id`),
	FOREIGN KEY (`account_id`,`device_id`) REFERENCES `devices`(`account_id`,`device_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `devices` (
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`registration_id` integer NOT NULL,
	`signed_record` blob NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`account_id`, `device_id`),
	FOREIGN KEY (`account_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `envelopes` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`guid` text NOT NULL,
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`sender_account_id` text NOT NULL,
	`sender_device_id` integer NOT NULL,
	`type` text NOT NULL,
	`ciphertext` blob NOT NULL,
	`server_timestamp` integer NOT NULL,
	FOREIGN KEY (`account_id`,`device_id`) REFERENCES `devices`(`account_id`,`device_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `envelopes_guid_unique` ON `envelopes` (`guid`);--> statement-breakpoint
CREATE INDEX `envelopes_queue` ON `envelopes` (`account_id`,`device_id`,`seq`);--> statement-breakpoint
CREATE INDEX `envelopes_age` ON `envelopes` (`server_timestamp`);--> statement-breakpoint
CREATE TABLE `kyber_prekeys` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`key_id` integer NOT NULL,
	`last_resort` integer NOT NULL,
	`record` blob NOT NULL,
	FOREIGN KEY (`account_id`,`device_id`) REFERENCES `devices`(`account_id`,`device_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `kyber_prekeys_key` ON `kyber_prekeys` (`account_id`,`device_id`,`key_id`);--> statement-breakpoint
CREATE INDEX `kyber_prekeys_device` ON `kyber_prekeys` (`account_id`,`device_id`,`last_resort`,`id`);--> statement-breakpoint
CREATE TABLE `link_tokens` (
	`token_hash` blob PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`expires_at` integer NOT NULL,
	FOREIGN KEY (`account_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `one_time_prekeys` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`key_id` integer NOT NULL,
	`record` blob NOT NULL,
	FOREIGN KEY (`account_id`,`device_id`) REFERENCES `devices`(`account_id`,`device_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `one_time_prekeys_key` ON `one_time_prekeys` (`account_id`,`device_id`,`key_id`);--> statement-breakpoint
CREATE TABLE `relationships` (
	`owner_id` text NOT NULL,
	`peer_id` text NOT NULL,
	`state` text,
	`restricted` integer DEFAULT false NOT NULL,
	`since` integer NOT NULL,
	`restricted_since` integer,
	PRIMARY KEY(`owner_id`, `peer_id`),
	FOREIGN KEY (`owner_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `relationships_state` ON `relationships` (`owner_id`,`state`);--> statement-breakpoint
CREATE TABLE `reports` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`reporter_id` text NOT NULL,
	`reported_id` text NOT NULL,
	`reason` text NOT NULL,
	`evidence` blob,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `signed_prekeys` (
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`key_id` integer NOT NULL,
	`record` blob NOT NULL,
	PRIMARY KEY(`account_id`, `device_id`),
	FOREIGN KEY (`account_id`,`device_id`) REFERENCES `devices`(`account_id`,`device_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `ws_tickets` (
	`ticket_hash` blob PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`expires_at` integer NOT NULL,
	FOREIGN KEY (`account_id`,`device_id`) REFERENCES `devices`(`account_id`,`device_id`) ON UPDATE no action ON DELETE cascade
);
