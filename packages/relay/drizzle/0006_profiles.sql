CREATE TABLE `profiles` (
	`account_id` text PRIMARY KEY NOT NULL,
	`version` integer NOT NULL,
	`ciphertext` blob NOT NULL,
	`avatar_blob` text,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`account_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE cascade
);
