/** Build-time settings (Vite's `import.meta.env`). */
interface ImportMetaEnv {
  /** The relay's URL when the app is hosted on another origin (the relay then lists that origin in `--cors-origins`). */
  readonly VITE_SOTTO_RELAY_URL?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
