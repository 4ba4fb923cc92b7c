"""Storage: table models, engines, migrations."""
