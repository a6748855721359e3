CREATE TABLE `account_recovery` (
	`account_id` text PRIMARY KEY NOT NULL,
	`secret_hash` blob NOT NULL,
	`sealed` blob NOT NULL,
	`blob_id` text,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`account_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `recovery_tokens` (
	`token_hash` blob PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`device_id` integer NOT NULL,
	`secret_hash` blob NOT NULL,
	`expires_at` integer NOT NULL,
	FOREIGN KEY (`account_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE cascade
);
