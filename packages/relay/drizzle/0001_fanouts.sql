CREATE TABLE `fanouts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`guid_prefix` text NOT NULL,
	`sender_account_id` text NOT NULL,
	`sender_device_id` integer NOT NULL,
	`type` text NOT NULL,
	`ciphertext` blob NOT NULL,
	`server_timestamp` integer NOT NULL,
	`recipients` blob NOT NULL,
	`skipped` text NOT NULL
);
