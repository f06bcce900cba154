"""The HTTP edge: checks every request passes before any route sees it (proxies, Host,
CORS), and how their settings are read."""
