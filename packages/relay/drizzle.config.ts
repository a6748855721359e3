import { defineConfig } from 'drizzle-kit';

/** `npx drizzle-kit generate` (run in packages/relay) writes SQL migrations to ./drizzle. */
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/db/schema.ts',
  out: './drizzle',
});
