"""The Litestar app: settings, auth, REST controllers, static PWA serving and the CLI."""
