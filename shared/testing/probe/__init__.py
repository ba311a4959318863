"""A minimal service the runtime's own tests drive: real tables, real migrations, real handlers."""
