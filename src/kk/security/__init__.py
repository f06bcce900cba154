"""Who may call: API keys and roles, dashboard sessions, limits on key guessing and on
mutations. Routes of every domain depend on `kk.security.access`."""
