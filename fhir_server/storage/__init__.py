"""Storage: the Store port and its adapters (SQLite embedded, MongoDB)."""
