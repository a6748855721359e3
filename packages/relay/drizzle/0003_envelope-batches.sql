CREATE TABLE `envelope_batch_acks` (
	`batch_id` integer PRIMARY KEY NOT NULL,
	`acked` blob NOT NULL
);
--> statement-breakpoint
CREATE TABLE `envelope_batches` (
	`id` integer PRIMARY KEY NOT NULL,
	`rows` blob NOT NULL
);
